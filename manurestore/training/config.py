"""TrainConfig: the one source of training defaults, for CLI flags and TOML config files alike.

The defaults are the seed's recipe (ViT-B/16, 256² inputs, batch 16, L1 + 0.1·perceptual +
0.1·(1 − SSIM), AdamW 1e-4, cosine schedule, gradient clipping at 1.0, 100 epochs), except that
inputs are native-resolution crops rather than whole pages squashed to 256².
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from manurestore.errors import UsageError
from manurestore.models.registry import MAX_CROP, MIN_CROP
from manurestore.validation import readable_path, shown

BUNDLED = "bundled"  # --init-weights bundled: the package's pretrained model
PATH_FIELDS = ("data", "vgg_weights", "init_weights", "val", "run_dir", "cache_dir")


class TrainConfig(BaseModel):
    # NaN and infinity are refused everywhere: a NaN learning rate trains nothing, silently.
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)

    data: list[Path] = Field(default_factory=list, description="training data folders (each a source)")
    mix: Optional[list[float]] = Field(None, description="sampling weight of each data folder, in order (default: by page count)")
    exclude: list[str] = Field(default_factory=list, description="leave out images whose path inside a data folder starts with this folder or matches this glob")
    page_context: Optional[bool] = Field(None, description="train the page-context branch that decides colour once per page (default: on, except for --pairs and --resize)")
    page_lr_scale: float = Field(10.0, gt=0, description="the page-context branch learns at this many times --lr")
    tiles: bool = Field(True, description="train the tiles (off: only the page-context branch learns, a quick way to adapt page-level colour decisions)")
    model: str = Field("vit-base", description="model size from the registry")
    epochs: int = Field(100, ge=1, description="passes over the training crops")
    batch_size: int = Field(16, ge=1, le=4096, description="crops per optimizer step (per process)")
    crop: int = Field(256, ge=MIN_CROP, le=MAX_CROP, description="side of the square training crops, in native pixels")
    crops_per_image: int = Field(1, ge=1, le=1024, description="random crops taken from each page per epoch")
    augment: bool = Field(True, description="random flips and 90° rotations of the crops")
    resize: bool = Field(False, description="the seed's whole-page resize to crop×crop (for comparison only)")
    lr: float = Field(1e-4, gt=0, description="peak AdamW learning rate")
    weight_decay: float = Field(0.05, ge=0, description="AdamW weight decay")
    warmup: float = Field(0.05, ge=0, description="warm-up: a fraction of all steps if < 1, else a step count")
    grad_clip: float = Field(1.0, gt=0, description="gradient norm clipping")
    l1_weight: float = Field(1.0, ge=0)
    perceptual_weight: float = Field(0.1, ge=0)
    ssim_weight: float = Field(0.1, ge=0)
    vgg_weights: Optional[Path] = Field(None, description="torchvision-format VGG16 weights for the perceptual loss")
    init_weights: Optional[Path] = Field(None, description="start from these .safetensors weights (fine-tuning) instead of a fresh model; 'bundled' is the pretrained model shipped with the package")
    preset: str = Field("aged", description="degradation preset name or TOML path")
    val: Optional[Path] = Field(None, description="validation folder (default: DATA/val, or a split)")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of a single folder held out for validation")
    val_every: int = Field(1, ge=1, description="validate every N epochs")
    pairs: bool = Field(False, description="train on real pairs DATA/degraded + DATA/clean")
    seed: int = Field(0, ge=0, lt=2**63, description="one seed for data order, crops, degradations and init")
    device: str = Field("auto", description="auto (a GPU when there is one, else the CPU), cpu, cuda, cuda:N or mps")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = Field(False, description="torch.compile the model")
    weights_dtype: Literal["fp32", "fp16", "bf16"] = Field("fp32", description="precision of the written .safetensors weights (fp16 halves the file; training itself is unchanged)")
    ema: float = Field(0.0, ge=0, lt=1, description="EMA decay of the weights (0 = off; e.g. 0.999)")
    workers: int = Field(0, ge=0, le=256, description="DataLoader worker processes")
    crops_on_device: Optional[bool] = Field(None, description="copy the training pages to the device once and cut each batch's crops there, the same crops as on the host (default: on for CUDA when the pages fit)")
    run_dir: Path = Field(Path("runs/latest"), description="the run folder: settings, metrics, weights, state and sample panels")
    max_steps: Optional[int] = Field(None, ge=1, description="stop after this many optimizer steps")
    time_limit: Optional[float] = Field(None, gt=0, description="stop after this many seconds (checkpoint saved)")
    log_every: int = Field(10, ge=1, description="write a metrics line every N steps")
    checkpoint_every: float = Field(120.0, ge=0, description="write state and weights at most every N seconds (and always at the end)")
    cache_dir: Optional[Path] = Field(None, description="where decoded pages are cached on disk")
    memory_budget_mb: int = Field(2048, ge=0, description="decoded pages kept in RAM up to this size")

    @field_validator("data", mode="before")
    @classmethod
    def _folders(cls, value):
        """One folder (an older config.json, a TOML string) or several."""
        if value is None:
            return []
        return [value] if isinstance(value, (str, Path)) else value

    @field_validator(*PATH_FIELDS)
    @classmethod
    def _no_nul(cls, value):
        """A path with a NUL byte fails deep inside the OS calls; refuse it here."""
        paths = value if isinstance(value, list) else [value]
        if any("\0" in str(path) for path in paths if path is not None):
            raise ValueError("a path may not contain a NUL character")
        return value

    @field_validator("init_weights")
    @classmethod
    def _bundled(cls, value: Optional[Path]) -> Optional[Path]:
        """`--init-weights bundled` is the pretrained model shipped with the package (a file of
        that name in the working folder still wins), so fine-tuning it needs no path."""
        if value is None or str(value) != BUNDLED or value.exists():
            return value
        from manurestore.models.checkpoint import bundled_model_path

        bundled = bundled_model_path()
        if bundled is None:
            raise ValueError("this installation has no bundled model; give the path of a .safetensors file")
        return bundled

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        """Unknown sizes fail here, whether or not --init-weights names a file to start from."""
        from manurestore.models.registry import list_models  # imports torch: only when validating

        if value not in list_models():
            raise ValueError(f"unknown model {value!r}; choose one of: {', '.join(list_models())}")
        return value

    @model_validator(mode="after")
    def _one_layout(self) -> "TrainConfig":
        if self.pairs and self.resize:
            raise ValueError("resize mode is for synthetic degradation only, not --pairs")
        if self.mix is not None:
            if len(self.mix) != len(self.data):
                raise ValueError(f"--mix gives {len(self.mix)} weight(s) for {len(self.data)} data folder(s); give one per folder, in order")
            if any(w <= 0 for w in self.mix):
                raise ValueError("--mix weights must be positive numbers")
        if self.pairs and len(self.data) > 1:
            raise ValueError("--pairs trains on one folder of pairs; give one DATA folder")
        if self.pairs and self.crops_on_device:
            raise ValueError("--crops-on-device is for synthetic data; --pairs cuts its crops on the host (drop --crops-on-device)")
        if self.page_context and (self.pairs or self.resize):
            raise ValueError("--page-context learns from synthetic page-level damage; it does not combine with --pairs or --resize")
        return self

    @property
    def uses_page_context(self) -> bool:
        """Whether this run trains (and its model has) a page-context branch."""
        return self.page_context if self.page_context is not None else not (self.pairs or self.resize)

    @property
    def data_label(self) -> str:
        """The data folders as a user would type them."""
        return " ".join(str(folder) for folder in self.data)


def load_config_file(path: Path) -> dict:
    """Values from a TOML file (flat keys, as the CLI flags without dashes: batch_size = 8)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read the config file ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML ({error})") from None
    unknown = sorted(set(data) - set(TrainConfig.model_fields))
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {unknown[:5]}; keys are the train flags with _ for -, e.g. batch_size")
    return data


def build_config(file_values: dict, flag_values: dict, source: str = "flags") -> TrainConfig:
    """Defaults ← config file ← flags given on the command line (None means not given)."""
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    try:
        return TrainConfig(**merged)
    except ValidationError as error:
        raise UsageError(f"{source}: {settings_problem(error)}") from None


def settings_problem(error: ValidationError) -> str:
    """One line from pydantic's report on TrainConfig: the key, what is wrong and the value given."""
    problem = error.errors()[0]
    message = problem["msg"].removeprefix("Value error, ")
    key = readable_path(problem["loc"])
    if not key:
        return message
    own = problem["type"] in ("missing", "value_error")  # our own messages say what they need
    return f"{key}: {message}" if own or len(repr(problem["input"])) > 60 else f"{key}: {message}, got {shown(problem['input'])}"
