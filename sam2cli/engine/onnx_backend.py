"""ONNX Runtime backend: a folder written by `sam2 export`, implementing engine/backend.py's
`Backend` protocol as SAM2Model does.

The graphs hold the tensor math (encode_image, decode, encode_memory, condition_on_memory); the
choices (which memory, which candidate mask, absent objects, a mask taken as the output) are the
engine's host code (tracker.py, heads.py), shared with the PyTorch model.
Host tensors live on the CPU; ONNX Runtime moves data to its device (CUDA provider) itself.
"""

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.onnx_folder import GRAPHS, files_of, read_manifest
from sam2cli.model.config import ModelConfig
from sam2cli.model.mask_decoder import pick_stable
from sam2cli.model.sam2 import Decoded, ImageFeatures, Memory

# Input names of each graph, in order: a graph without them is not a sam2cli export.
INPUTS = {
    "image_encoder": ["image"],
    "decoder": ["image", "s0", "s1", "coords", "labels", "mask_input", "has_mask"],
    "memory_encoder": ["pix_feat", "mask_logits", "obj_score", "binarize"],
    "memory_attention": ["top", "top_pos", "mem", "mem_pos", "mem_tpos", "ptrs", "ptr_pos"],
}
OUTPUTS = {
    "image_encoder": ["s0", "s1", "top", "top_pos"],
    "decoder": ["masks", "iou", "obj_score", "obj_ptr"],
    "memory_encoder": ["features", "pos"],
    "memory_attention": ["conditioned"],
}


def providers_for(device) -> list:
    """ONNX Runtime execution providers for a `device=` value: '' (auto) takes CUDA when the
    installed onnxruntime has it, else the CPU; cpu; cuda / cuda:N / N; tensorrt (TensorRT, then
    CUDA). A missing GPU provider is one line naming the package to install."""
    import onnxruntime as ort
    dev = str(device or "").strip().lower()
    available = ort.get_available_providers()
    if dev == "":
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    if dev == "cpu":
        return ["CPUExecutionProvider"]
    if not (dev.startswith("cuda") or dev.isdigit() or dev == "tensorrt"):
        raise UsageError(f"device={device} is not available to ONNX Runtime: use device=cpu, cuda or tensorrt")
    if "CUDAExecutionProvider" not in available:
        raise SAM2Error(f"device={device} needs ONNX Runtime's CUDA provider, which the installed onnxruntime "
                        "lacks: pip uninstall -y onnxruntime && pip install onnxruntime-gpu")
    if dev != "tensorrt":
        index = dev.split(":")[-1] if ":" in dev else (dev if dev.isdigit() else "0")
        if not index.isdigit():
            raise UsageError(f"device={device} is not a CUDA device: use cuda, cuda:N or N")
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    if "TensorrtExecutionProvider" not in available:
        raise SAM2Error("device=tensorrt needs ONNX Runtime's TensorRT provider: pip install onnxruntime-gpu tensorrt")
    return ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxSAM2(nn.Module):
    """SAM 2 on ONNX Runtime; build with `load_onnx_model(folder, device)`.

    sessions: graph name -> onnxruntime.InferenceSession; host: no_mem_embed (1, 1, C),
    no_obj_ptr (1, C), mask_downsample weight (1, 1, 4, 4) and bias (1,).
    """
    kind = "onnxruntime"

    def __init__(self, *, cfg: ModelConfig, sessions: Dict[str, object], host: Dict[str, np.ndarray],
                 folder: Path, manifest: dict):
        super().__init__()
        self.cfg = cfg
        self.folder, self.manifest = Path(folder), manifest
        self.sessions = sessions
        self.no_mem_embed = nn.Parameter(torch.from_numpy(host["no_mem_embed"]), requires_grad=False)
        self.no_obj_ptr = nn.Parameter(torch.from_numpy(host["no_obj_ptr"]), requires_grad=False)
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.mask_downsample.weight.data.copy_(torch.from_numpy(host["mask_downsample.weight"]))
        self.mask_downsample.bias.data.copy_(torch.from_numpy(host["mask_downsample.bias"]))
        self.mask_downsample.requires_grad_(False)

    @property
    def image_size(self) -> int:
        return self.cfg.image_size

    @property
    def mask_input_size(self) -> int:
        return 4 * (self.cfg.image_size // self.cfg.backbone_stride)

    @property
    def device(self) -> torch.device:
        """The host tensors' device: the engine's inputs and the graphs' outputs are CPU tensors."""
        return self.no_obj_ptr.device

    @property
    def provider(self) -> str:
        """The execution provider the graphs run on first (e.g. CPUExecutionProvider)."""
        return self.sessions["image_encoder"].get_providers()[0]

    @property
    def num_params(self) -> int:
        return int(self.manifest.get("params", 0))

    def set_image_size(self, size: int) -> None:
        if int(size) != self.image_size:
            raise UsageError(f"{self.folder} was exported at imgsz={self.image_size}: run it with that imgsz, or "
                             f"export again with imgsz={size}")

    def _run(self, graph: str, **inputs: torch.Tensor) -> List[torch.Tensor]:
        feed = {k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in inputs.items()}
        return [torch.from_numpy(o) for o in self.sessions[graph].run(None, feed)]

    # ------------------------------------------------------------------ image
    def encode_image(self, x: torch.Tensor) -> ImageFeatures:
        """Normalised (B, 3, S, S) images -> features (one graph run per image)."""
        outs = [self._run("image_encoder", image=x[i:i + 1].float()) for i in range(x.shape[0])]
        return ImageFeatures(*(torch.cat(parts) for parts in zip(*outs)))

    def decode_all(self, image: torch.Tensor, high_res: Sequence[torch.Tensor], coords=None, labels=None,
                   mask_input=None) -> Tuple[torch.Tensor, ...]:
        """All 4 candidates: masks (N, 4, 4h, 4w), iou (N, 4), obj_score (N, 1), obj_ptr (N, 4, C).
        Clicks get the prompt encoder's padding point appended, as in PromptEncoder.embed_points."""
        n = coords.shape[0] if coords is not None else (mask_input.shape[0] if mask_input is not None else 1)
        if coords is None:
            coords, labels = torch.zeros(n, 0, 2), torch.zeros(n, 0, dtype=torch.int32)
        else:
            coords = torch.cat([coords.float(), torch.zeros(n, 1, 2)], 1)
            labels = torch.cat([labels.to(torch.int32), -torch.ones(n, 1, dtype=torch.int32)], 1)
        has_mask = torch.ones(1) if mask_input is not None else torch.zeros(1)
        if mask_input is None:
            s = self.mask_input_size
            mask_input = torch.zeros(1, 1, s, s)
        s0, s1 = high_res
        return tuple(self._run("decoder", image=image.float(), s0=s0.float(), s1=s1.float(), coords=coords,
                               labels=labels, mask_input=mask_input.float(), has_mask=has_mask))

    def decode(self, image: torch.Tensor, high_res: Sequence[torch.Tensor], coords=None, labels=None,
               mask_input=None, multimask: bool = False) -> Decoded:
        """SAM2Model.decode on the graph: the 3 multimask candidates, or the single-mask output
        (the best multimask one where it is unstable) with the single-mask token's pointer."""
        masks, iou, obj_score, ptr = self.decode_all(image, high_res, coords, labels, mask_input)
        if multimask:
            return Decoded(masks[:, 1:], iou[:, 1:], obj_score, ptr[:, 1:])
        m1, i1 = pick_stable(masks, iou, self.cfg.stability_delta, self.cfg.stability_thresh)
        return Decoded(m1, i1, obj_score, ptr[:, :1])

    # ------------------------------------------------------------------ video steps
    def encode_memory(self, pix_feat: torch.Tensor, high_res_logits: torch.Tensor, obj_score: torch.Tensor,
                      from_points: bool) -> Memory:
        binarize = torch.ones(1) if (from_points and self.cfg.binarize_mask_from_pts_for_mem_enc) else torch.zeros(1)
        feats, pos = self._run("memory_encoder", pix_feat=pix_feat.float(), mask_logits=high_res_logits.float(),
                               obj_score=obj_score.float(), binarize=binarize)
        return Memory(feats, pos)

    def condition_on_memory(self, feats: ImageFeatures, memories: Sequence[Tuple[int, Memory]],
                            ptrs: Sequence[Tuple[int, torch.Tensor]], ptr_tpos_max: int) -> torch.Tensor:
        """SAM2Model.condition_on_memory on the graph (same arguments, same result)."""
        top = feats.top
        b, c, h, w = top.shape
        if not memories and not ptrs:
            return top + self.no_mem_embed.reshape(1, c, 1, 1)
        m, n_mem = self.cfg.mem_dim, self.cfg.num_maskmem
        if memories:
            mem = torch.stack([mm.features.float() for _, mm in memories], 1)          # (B, F, m, h, w)
            mem_pos = torch.stack([mm.pos.float() for _, mm in memories], 1)
        else:
            mem = mem_pos = torch.zeros(b, 0, m, h, w)
        tpos = torch.tensor([n_mem - 1 if ago == 0 else ago - 1 for ago, _ in memories], dtype=torch.int64)
        if ptrs:
            ptr = torch.stack([p.float() for _, p in ptrs], 1)                           # (B, P, C)
            ptr_pos = torch.tensor([float(d) for d, _ in ptrs]) / ptr_tpos_max
        else:
            ptr, ptr_pos = torch.zeros(b, 0, c), torch.zeros(0)
        return self._run("memory_attention", top=top.float(), top_pos=feats.top_pos.float(), mem=mem,
                         mem_pos=mem_pos, mem_tpos=tpos, ptrs=ptr, ptr_pos=ptr_pos)[0]


def _check_signature(name: str, session, path: Path) -> None:
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != INPUTS[name] or outputs != OUTPUTS[name]:
        raise SAM2Error(f"{path} is not a sam2cli {name} graph (inputs {', '.join(inputs) or 'none'}): "
                        "export the model again with `sam2 export model=<checkpoint> format=onnx`")


def _check_shapes(sessions: Dict[str, object], cfg: ModelConfig, files: Dict[str, Path]) -> None:
    """Every graph's fixed sizes must be the manifest's model: a graph of another model is one line."""
    s, c, m = cfg.image_size, cfg.d_model, cfg.mem_dim
    h = s // cfg.backbone_stride
    expected = {"image_encoder": ("image", [1, 3, s, s]), "decoder": ("image", [1, c, h, h]),
                "memory_encoder": ("pix_feat", [1, c, h, h]), "memory_attention": ("mem", [1, "frames", m, h, h])}
    for name, (inp, want) in expected.items():
        got = next(i.shape for i in sessions[name].get_inputs() if i.name == inp)
        if [g if isinstance(g, int) else "frames" for g in got] != want:
            raise SAM2Error(f"{files[name]} takes {inp} of shape {got}, but sam2.yaml describes {cfg.name} at "
                            f"imgsz={s} ({want}): a graph of another model; export the model again")


def load_onnx_model(folder, device=None) -> OnnxSAM2:
    """Verify every file's SHA-256 against sam2.yaml, then open the graphs in ONNX Runtime."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise SAM2Error("running an ONNX export needs onnxruntime: pip install 'sam2cli[onnx]'") from e
    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        cfg = ModelConfig.from_dict(manifest["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise SAM2Error(f"{folder / 'sam2.yaml'} has no valid model config ({e}); export the model again") from e
    files = files_of(folder)
    with np.load(files["host_tensors"], allow_pickle=False) as z:
        host = {k: z[k].astype(np.float32) for k in z.files}
    providers = providers_for(device)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ONNX Runtime's shape-merge warnings are not the user's business
    # no busy-waiting between runs: the host code (and PyTorch) runs between graph calls
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = {}
    for name in GRAPHS:
        try:
            sessions[name] = ort.InferenceSession(str(files[name]), opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own error types for invalid graphs
            raise SAM2Error(f"ONNX Runtime cannot load {files[name]} ({str(e).splitlines()[0][:160]}); "
                            "export the model again") from e
        _check_signature(name, sessions[name], files[name])
    _check_shapes(sessions, cfg, files)
    return OnnxSAM2(cfg=cfg, sessions=sessions, host=host, folder=folder, manifest=manifest).eval()
