"""Small shared utilities: config resolvers, config checks, distributed helpers."""
