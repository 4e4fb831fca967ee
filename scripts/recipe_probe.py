"""Fast recipe probe: a plain PyTorch training loop on the embedded task, validation accuracy every N steps.

The recipe search behind experiment=long_range* (docs/EMBEDDED_TASK.md) ran many of these side by side on one GPU
(scripts/probes/recipe_gpu_batch*.sh). It uses the project's own model, data, losses and schedule; only the loop
is plain (no Lightning), so a probe of 2,000 steps takes about 2 minutes beside 15 others on one H200.
For colour-vs-other accuracy it splits the answers by whether they are colours.

    python scripts/recipe_probe.py --task needle --frames 32 --l1 2 --lr 1e-3 --wd 0 --warmup 200 --steps 2000
"""
import argparse, functools, sys, time
import torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src"))
from hierarchicalvlm.data.synthetic import SyntheticVideoQADataModule
from hierarchicalvlm.models.config import NetConfig
from hierarchicalvlm.models.hierarchical_vlm import HierarchicalVLM, qa_loss, contrastive_loss
from hierarchicalvlm.models.lit_module import with_padding_flag, warmup_cosine
from hierarchicalvlm.attention import FullAttention
from hierarchicalvlm.data.synthetic_render import COLOURS as COLS
p = argparse.ArgumentParser()
p.add_argument("--task", default="needle"); p.add_argument("--frames", type=int, default=8)
p.add_argument("--steps", type=int, default=300); p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--wd", type=float, default=0.05); p.add_argument("--warmup", type=int, default=50)
p.add_argument("--cw", type=float, default=0.5); p.add_argument("--dim", type=int, default=64)
p.add_argument("--heads", type=int, default=4); p.add_argument("--patch", type=int, default=8)
p.add_argument("--l1", type=int, default=1); p.add_argument("--l2", type=int, default=2)
p.add_argument("--bs", type=int, default=32); p.add_argument("--every", type=int, default=50)
p.add_argument("--seed", type=int, default=0); p.add_argument("--noise", type=float, default=0.0)
p.add_argument("--memory", type=int, default=0); p.add_argument("--eval_frames", type=int, default=0)
p.add_argument("--curriculum", default="")
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--name", default="")
p.add_argument("--mlp", type=float, default=2.0)  # e.g. "8:100,16:100,32:100" frames:steps
a = p.parse_args()
torch.manual_seed(a.seed)
def dm_for(frames):
    dm = SyntheticVideoQADataModule(num_frames=frames, tasks=[a.task], noise=a.noise, num_train=a.steps*a.bs, num_val=256, batch_size=a.bs)
    dm.setup(); return dm
dm = dm_for(a.frames)
inputs = dm.model_inputs()
net = HierarchicalVLM(inputs, functools.partial(FullAttention), NetConfig(
    dim=a.dim, num_heads=a.heads, patch_size=a.patch, level1_depth=a.l1, level2_depth=a.l2, text_depth=1,
    memory_enabled=bool(a.memory), clip_frames=4, mlp_ratio=a.mlp, dropout=0.0, embed_dim=64, max_text_length=32,
    activation_checkpointing=False))
decay = [q for n, q in net.named_parameters() if q.ndim >= 2 and "pos" not in n and "summary" not in n]
nodecay = [q for n, q in net.named_parameters() if not (q.ndim >= 2 and "pos" not in n and "summary" not in n)]
net.to(a.device)
opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nodecay, "weight_decay": 0}], lr=a.lr, betas=(0.9, 0.98))
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, a.warmup, a.steps, 0.05))
stages = [(int(f), int(n)) for f, n in (x.split(":") for x in a.curriculum.split(","))] if a.curriculum else [(a.frames, a.steps)]
val_dm = dm_for(a.eval_frames or a.frames)
def todev(b):
    return {k: (v.to(a.device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in b.items()}
def evaluate():
    net.eval(); hits = tot = 0; ch = ct = 0
    with torch.no_grad():
        for b in val_dm.val_dataloader():
            b = todev(b); out = net(with_padding_flag(b)); ok = (out.qa_logits.argmax(-1) == b["answer"]); hits += ok.sum().item(); tot += len(b["answer"])
            col = torch.tensor([val_dm.answers[i] in COLS for i in b["answer"].tolist()], device=ok.device); ch += ok[col].sum().item(); ct += col.sum().item()
    net.train(); global colacc; colacc = (ch / ct if ct else -1, (hits - ch) / max(1, tot - ct)); return hits / tot
step = 0; t0 = time.time(); accs = []
for frames, n in stages:
    d = dm_for(frames) if frames != a.frames else dm
    it = iter(d.train_dataloader())
    for _ in range(n):
        try: b = next(it)
        except StopIteration: it = iter(d.train_dataloader()); b = next(it)
        b = todev(b)
        out = net(with_padding_flag(b))
        loss = qa_loss(out.qa_logits, b["answer"]) + (a.cw * contrastive_loss(out.video_embedding, out.text_embedding, out.logit_scale) if a.cw else 0)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0); opt.step(); sched.step(); step += 1
        if step % a.every == 0:
            acc = evaluate(); accs.append(acc)
            print(f"{a.name} step {step} frames {frames} loss {loss.item():.3f} val {acc:.3f} colour/other {colacc[0]:.2f}/{colacc[1]:.2f} t {time.time()-t0:.0f}s", flush=True)
print("FINAL", a.name, " ".join(f"{x:.2f}" for x in accs), "colour/other %.2f/%.2f" % colacc, vars(a))
