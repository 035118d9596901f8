"""Compare tracker policies (`tracker=sam2|samurai|dam4sam`) on a DAVIS-layout folder, as `sam2 val`
scores them (the same code: engine/val/vos_run.evaluate_videos), with the numbers issue 26 asks for.

    python scripts/eval_trackers.py --data hard_test/hard --trackers sam2,samurai,dam4sam --out hard_test.json

For each tracker: J&F, its difference from sam2's on the same objects with a 95% bootstrap
interval (whole videos resampled: engine/val/vos.paired_difference), J and F (mean, recall,
decay), lost objects (mean J over the last quarter of an object's scored frames under 0.5) and
seconds per frame against sam2's, as a markdown table on stdout; `--out` also keeps every
object's J per frame. `--set samurai.alpha=0.5` overrides a hyperparameter of
cfg/trackers/<name>.yaml for this run (tuning: on the tuning split only).
`--count-anchors` counts dam4sam's anchor test (frames checked, reliable, revealing a look-alike,
anchors added). `--trackers oracle_choice,oracle_memory` measure ceilings with the ground truth (class Oracle).
`--videos lookalike,twin` keeps the videos whose name starts with one of these.
`--rounds 3` runs the trackers in turn 3 times and keeps each one's fastest round: its
seconds per frame are then a cost figure on a noisy machine (the scores do not change).

`--analyze SEED` instead tracks with the reference's rule and looks at the decoder's 3 candidates
on every tracked frame of a hard split written with that seed (make_scenes.py --hard): whether the
predicted IoU ranks them as their true IoU does, and whether one of them covers the look-alike
(the clips are made again from the seed, with the look-alikes' masks).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sam2cli.engine.policies as policies  # noqa: E402
from sam2cli.engine.loader import load_model  # noqa: E402
from sam2cli.engine.val.vos import global_stats, paired_difference  # noqa: E402
from sam2cli.engine.val.vos_run import evaluate_videos  # noqa: E402
from sam2cli.io.datasets.vos import open_vos  # noqa: E402

LOST_J = 0.5


def lost(J) -> bool:
    """An object is lost when its mean J over the last quarter of its scored frames is under 0.5."""
    return len(J) > 0 and float(np.mean(np.array_split(np.asarray(J, float), 4)[-1] if len(J) >= 4 else J)) < LOST_J


def parse_sets(items):
    """['samurai.alpha=0.5', ...] -> {'samurai': {'alpha': 0.5}}."""
    import yaml
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        name, _, param = key.partition(".")
        if not param or not value:
            raise SystemExit(f"--set wants name.param=value, got {item!r}")
        out.setdefault(name, {})[param] = yaml.safe_load(value)
    return out


def with_overrides(sets):
    """Make make_policy (which the tracking session calls) read the overrides too."""
    base = policies.tracker_params

    def params(name):
        return {**base(name), **sets.get(name, {})}
    policies.tracker_params = params


def scores(tracker: str, objs, frames: int, seconds: float) -> dict:
    """A table row: the DAVIS numbers, lost objects and time, with every object's J and F."""
    return {"tracker": tracker, **global_stats(objs), "lost": int(sum(lost(o.J) for o in objs)),
            "objects": len(objs), "frames": frames, "seconds": seconds, "s_per_frame": seconds / max(frames, 1),
            "per_object": [{"sequence": o.sequence, "video": o.video, "obj_id": o.obj_id, "J": o.J, "F": o.F, **o.stats(), "lost": lost(o.J)} for o in objs]}


def run(model, videos, tracker):
    t0 = time.perf_counter()
    r = evaluate_videos(model, videos, tracker=tracker)
    return {**scores(tracker, r["objects"], r["frames"], time.perf_counter() - t0), "per_video": r["videos"]}


class Recorder(policies.Policy):
    """The reference's rule (best predicted IoU, the reference's memories) that records every
    tracked frame's candidates: (obj_id, frame, logits (3, h, w), predicted IoUs (3,), object score)."""
    name = "record"
    seen: list = []

    def begin(self, obj, frame, reverse):
        def choose(logits, ious, obj_score):
            Recorder.seen.append((obj.obj_id, frame, logits[0].detach().float().cpu(), ious[0].detach().float().cpu(),
                                  float(obj_score.reshape(-1)[0])))
            return ious.argmax(-1)
        return choose


def analyze(model, videos, seed: int, size) -> dict:
    """Candidates of the reference's rule against the truth and the look-alikes, over tracked frames."""
    import torch
    import torch.nn.functional as F

    from sam2cli.engine.metrics import iou
    from sam2cli.train.scenes_hard_data import HARD_CASES, hard_clip
    policies.POLICIES["record"] = Recorder
    rows = []
    for v in videos:
        case = v.name.rstrip("0123456789")
        index = int(v.name[len(case):])
        Recorder.seen = []
        evaluate_videos(model, [v], tracker="record")
        rng = np.random.default_rng([seed, 3, HARD_CASES.index(case), index])
        frames, masks, _, copies = hard_clip(rng, case, index, size, len(v.frames), len(v.frames), copies=True)
        masks = masks[:, masks.any(axis=(0, 2, 3))]
        H, W = masks.shape[2:]
        for oid, t, logits, ious, score in Recorder.seen:
            cand = (F.interpolate(logits[None], size=(H, W), mode="bilinear", align_corners=False)[0] > 0).numpy()
            gt = masks[t, oid - 1]
            true = [iou(c, gt) for c in cand]
            near = [max([(c & copies[t, k]).sum() / max(copies[t, k].sum(), 1) for k in range(copies.shape[1])] or [0.0])
                    for c in cand]
            look = copies.shape[1] > 0 and copies[t].any() and score > 0
            rows.append({"video": v.name, "obj": oid, "t": t, "pred": ious.tolist(), "true": true, "score": score,
                         "lookalike_in_sight": bool(look), "covers_lookalike": near})
    ranked = [r for r in rows if r["score"] > 0 and max(r["true"]) > 0]
    agree = np.mean([int(np.argmax(r["pred"])) == int(np.argmax(r["true"])) for r in ranked])
    gain = np.mean([max(r["true"]) - r["true"][int(np.argmax(r["pred"]))] for r in ranked])
    spread = np.mean([max(r["true"]) - min(r["true"]) for r in ranked])
    look = [r for r in rows if r["lookalike_in_sight"]]
    chosen_cov = [r["covers_lookalike"][int(np.argmax(r["pred"]))] > 0.5 for r in look]
    alt_cov = [any(c > 0.5 for k, c in enumerate(r["covers_lookalike"]) if k != int(np.argmax(r["pred"])))
               for r in look]
    return {"frames": len(rows), "ranked_frames": len(ranked), "argmax_pred_is_argmax_true": float(agree),
            "mean_true_iou_lost_by_the_choice": float(gain), "mean_true_iou_spread_of_candidates": float(spread),
            "lookalike_frames": len(look), "chosen_covers_lookalike": float(np.mean(chosen_cov)) if look else None,
            "an_alternative_covers_lookalike": float(np.mean(alt_cov)) if look else None, "rows": rows}


class Oracle(policies.base.PassPolicy):
    """A ceiling, not a tracker: on every tracked frame it picks the candidate whose true IoU with
    the ground truth is highest (`choice`), and with `memory` it also keeps in memory only frames
    whose chosen mask has true IoU >= 0.5 (or object and truth both absent), the last 6 of them.
    What any policy that only chooses among the 3 candidates and among memories could reach."""
    name = "oracle"
    video = None    # the VosVideo being tracked (set per video)
    truth: dict = {}

    def __init__(self, memory: bool = False):
        self.memory = memory

    def fresh(self, obj, last, reverse):
        st = policies.base.PassState(last, reverse)
        st.good = list(reversed(self.history(obj, last, reverse, self.cfg.num_maskmem - 1)))  # oldest first
        st.ok = True
        return st

    @classmethod
    def gt(cls, oid: int, t: int):
        v = cls.video
        if t not in cls.truth:
            k = v.annotated.index(t) if t in v.annotated else None
            cls.truth[t] = v.read_truth(k) if k is not None else None
        got = cls.truth[t]
        return None if got is None else got.get(oid, np.zeros(v.size, bool))

    def begin(self, obj, frame, reverse):
        import torch
        import torch.nn.functional as F
        from sam2cli.engine.metrics import iou
        st = self.state(obj, frame, reverse)

        def choose(logits, ious, obj_score):
            best = ious.argmax(-1)
            gt = self.gt(obj.obj_id, frame)
            st.ok = True
            if gt is None:
                return best
            if not gt.any():
                st.ok = float(obj_score.reshape(-1)[0]) <= 0
                return best
            cand = (F.interpolate(logits[:1].float(), size=gt.shape, mode="bilinear", align_corners=False)[0] > 0).cpu().numpy()
            true = [iou(c, gt) for c in cand]
            k = int(np.argmax(true))
            st.ok = true[k] >= 0.5 and float(obj_score.reshape(-1)[0]) > 0
            return torch.full_like(best, k)
        return choose

    def observe(self, obj, frame, out, reverse):
        if obj.cond.get(frame) is out:
            obj.policy = self.fresh(obj, frame, reverse)
            return
        st = self.active(obj, frame, reverse)
        if st is None:
            return
        if st.ok or not self.memory:
            st.good = (st.good + [(frame, out)])[-(self.cfg.num_maskmem - 1):]
        st.last, st.now = frame, None

    def memories(self, obj, frame, reverse):
        st = self.active(obj, frame, reverse)
        if st is None or not self.memory:
            return None
        kept = st.good
        return self.cond_memories(obj) + [(min(abs(frame - t), len(kept)), o.memory) for t, o in kept]


class CountedDam4Sam(policies.Dam4Sam):
    """tracker=dam4sam, counting its anchor test: present frames checked, reliable ones (predicted
    IoU >= iou_threshold), ones where an alternative reveals a look-alike, anchors added."""
    counts = {"checked": 0, "reliable": 0, "reveals": 0, "anchors": 0}

    def anchor(self, st, frame, area):
        added = super().anchor(st, frame, area)
        c = CountedDam4Sam.counts
        c["checked"] += 1
        if st.cand is not None:
            boxes, chosen, iou = st.cand
            c["reliable"] += iou >= self.iou_threshold
            c["reveals"] += policies.dam4sam.reveals_distractor(boxes, chosen, self.box_ratio)
        c["anchors"] += added
        return added


def oracle_run(model, videos, memory: bool) -> dict:
    from functools import partial
    policies.POLICIES["oracle"] = partial(Oracle, memory=memory)
    objs, frames, t0 = [], 0, time.perf_counter()
    for v in videos:
        Oracle.video, Oracle.truth = v, {}
        r = evaluate_videos(model, [v], tracker="oracle")
        objs += r["objects"]
        frames += r["frames"]
    return scores("oracle, choice and memory" if memory else "oracle, choice", objs, frames, time.perf_counter() - t0)


def object_scores(row) -> dict:
    """{(video, obj_id): J&F-Mean} of a table row's objects."""
    return {(o["video"], o["obj_id"]): o["J&F-Mean"] for o in row["per_object"]}


def sam2_row(rows) -> dict:
    """The row the others are compared with: tracker=sam2's, else the first."""
    return next((r for r in rows if r["tracker"] == "sam2"), rows[0])


def against_sam2(rows) -> None:
    """Each row's J&F against sam2's on the same objects, with a 95% interval (videos resampled)."""
    base = sam2_row(rows)
    for r in rows:
        r["vs_sam2"] = paired_difference(object_scores(base), object_scores(r))


def table(rows) -> str:
    """The markdown table of rows that `against_sam2` has compared."""
    base = sam2_row(rows)
    head = ("| tracker | J&F | J&F - sam2's [95% CI] | J mean / recall / decay | F mean / recall / decay | "
            "lost objects | s / frame |\n|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        rel = r["s_per_frame"] / base["s_per_frame"]
        d = r["vs_sam2"]
        lines.append(f"| {r['tracker']} | {r['J&F-Mean']:.3f} | {d['delta']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] | "
                     f"{r['J-Mean']:.3f} / {r['J-Recall']:.3f} / {r['J-Decay']:.3f} | {r['F-Mean']:.3f} / "
                     f"{r['F-Recall']:.3f} / {r['F-Decay']:.3f} | {r['lost']} of {r['objects']} | "
                     f"{r['s_per_frame']:.3f} ({rel:.2f}x) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a DAVIS-layout folder (make_scenes.py's davis/ or hard/)")
    ap.add_argument("--model", default="sam2_demo.pt")
    ap.add_argument("--trackers", default="sam2,samurai,dam4sam")
    ap.add_argument("--videos", default="", help="keep videos whose name starts with one of these (comma list)")
    ap.add_argument("--set", action="append", help="name.param=value: a hyperparameter for this run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, help="write every number (and J per frame) as json")
    ap.add_argument("--analyze", type=int, metavar="SEED", help="look at the candidates instead (a hard split's seed)")
    ap.add_argument("--size", type=int, default=128, help="--analyze: the split's frame size (default 128)")
    ap.add_argument("--count-anchors", action="store_true", help="count dam4sam's anchor triggers")
    ap.add_argument("--rounds", type=int, default=1, help="run the trackers in turn this many times; keep the fastest")
    args = ap.parse_args(argv)
    with_overrides(parse_sets(args.set))
    model, _ = load_model(args.model, args.device)
    videos = open_vos(args.data)
    keep = [p for p in args.videos.split(",") if p]
    if keep:
        videos = [v for v in videos if any(v.name.startswith(p) for p in keep)]
    if args.analyze is not None:
        res = analyze(model, videos, args.analyze, args.size)
        print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))
        if args.out:
            args.out.write_text(json.dumps(res, indent=1))
        return 0
    if args.count_anchors:
        policies.POLICIES["dam4sam"] = CountedDam4Sam
    names = [t.strip() for t in args.trackers.split(",") if t.strip()]
    best = {}
    for _ in range(max(args.rounds, 1)):  # alternated: each tracker's fastest round is its cost
        for name in names:
            row = (oracle_run(model, videos, name == "oracle_memory") if name.startswith("oracle")
                   else run(model, videos, name))
            if name not in best or row["s_per_frame"] < best[name]["s_per_frame"]:
                best[name] = row
            print(f"{name}: J&F {row['J&F-Mean']:.4f}, lost {row['lost']}/{row['objects']}, "
                  f"{row['s_per_frame']:.3f} s/frame", file=sys.stderr, flush=True)
    rows = [best[n] for n in names]
    against_sam2(rows)
    print(table(rows))
    if args.count_anchors:
        print(f"dam4sam's anchor test: {CountedDam4Sam.counts}")
    if args.out:
        args.out.write_text(json.dumps({"data": args.data, "model": args.model, "sets": args.set or [],
                                        "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
