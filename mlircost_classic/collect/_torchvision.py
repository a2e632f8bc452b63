"""Training source ``torchvision``: its image networks with random weights.

Every classification builder of ``torchvision.models`` (``resnet18``,
``mobilenet_v3_small``, ``efficientnet_b0`` ...), the segmentation models and
the feature-pyramid backbones of the detection models become a family
``tv_<builder>`` (``tv_resnet18``; detection backbones ``tv_fpn_<backbone>``)
with a short list of programs (:data:`TORCHVISION_SIZES`): small images,
batch 1 or 2, f32, f16 and bf16. Models are built with ``weights=None`` (and
``weights_backbone=None``): nothing is ever downloaded, weights are drawn from
torch's seeded initializers, and weights never reach the stored text anyway.
The architectures are sorted by parameter count (:data:`ARCHITECTURES` is in
that order) so that a run over :func:`~._sources.network_specs` labels the
cheap networks first.

Detection models themselves are not listed: their heads call ``torchvision::``
operators (``nms``, ``roi_align``) that torch-mlir does not lower; their
backbones with the feature pyramid are.

torchvision's PyPI wheels are built against the CUDA torch, so their C++
operators do not load beside the CPU torch of the ``[collect]`` extra and
``import torchvision`` fails with "operator torchvision::nms does not exist".
The model definitions are plain Python and never call those operators;
:func:`import_torchvision` declares the two operator schemas that torchvision
registers fake kernels for at import time, and imports it again. transformers
imports torchvision whenever it is installed, so the transformers
architectures (here and in the OOD suite) import it through
:func:`import_transformers`, which does this first. torch,
torchvision and that declaration are touched only when a program is built.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable

from ._families import _program, _randn

__all__ = [
    "ARCHITECTURES",
    "TORCHVISION_SIZES",
    "import_torchvision",
    "import_transformers",
]

# The operators torchvision's ``_meta_registrations`` registers fake kernels
# for unconditionally (the others only when its C++ library loaded).
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library = None  # the torch.library.Library holding the schemas, once declared


def import_torchvision():
    """Import torchvision, declaring its C++ operators' schemas if they are missing.

    Returns
    -------
    module
        ``torchvision``.

    Raises
    ------
    ImportError
        If torchvision is not installed.
    RuntimeError
        If the import fails for another reason than the missing operators.
    """
    global _library
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or _library is not None:
            raise
        import torch

        # The failed import left half-initialized modules behind.
        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        _library = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _SCHEMAS:
            _library.define(schema)
        import torchvision
    return torchvision


def import_transformers():
    """Import transformers, through :func:`import_torchvision` first if installed.

    transformers imports torchvision whenever it is installed, and would fail
    as torchvision does.

    Returns
    -------
    module
        ``transformers``.
    """
    if importlib.util.find_spec("torchvision") is not None:
        import_torchvision()
    import transformers

    return transformers


def _classifier(builder: str, **kwargs) -> Callable[[dict], tuple]:
    """``make`` for a classification builder: logits of a batch of images."""

    def make(p: dict):
        model = import_torchvision().models.get_model(builder, weights=None, **kwargs)
        return model, (_randn(p["batch"], 3, p["image"], p["image"]),)

    return make


def _sized_classifier(builder: str, key: str) -> Callable[[dict], tuple]:
    """A classifier whose builder must be told the image size (ViT, MaxViT)."""

    def make(p: dict):
        size = p["image"] if key == "image_size" else (p["image"], p["image"])
        return _classifier(builder, **{key: size})(p)

    return make


def _segmentation(builder: str) -> Callable[[dict], tuple]:
    """``make`` for a segmentation model: its per-pixel class scores."""

    def make(p: dict):
        models = import_torchvision().models
        model = models.get_model(
            builder, weights=None, weights_backbone=None, aux_loss=False
        )

        def forward(m, x):
            return m.model(x)["out"]

        return _program(forward, model=model), (
            _randn(p["batch"], 3, p["image"], p["image"]),
        )

    return make


def _fpn_backbone(backbone: str) -> Callable[[dict], tuple]:
    """``make`` for a detection backbone with its feature pyramid (every level)."""

    def make(p: dict):
        utils = import_torchvision().models.detection.backbone_utils
        if backbone.startswith("resnet"):
            model = utils.resnet_fpn_backbone(
                backbone_name=backbone, weights=None, trainable_layers=5
            )
        else:
            model = utils.mobilenet_backbone(
                backbone_name=backbone, weights=None, fpn=True, trainable_layers=6
            )

        def forward(m, x):
            return tuple(m.model(x).values())

        return _program(forward, model=model), (
            _randn(p["batch"], 3, p["image"], p["image"]),
        )

    return make


def _sizes(small: int = 64, large: int = 96) -> list[dict]:
    """The programs of one architecture: image size, batch and element type."""
    return [
        {"batch": 1, "image": small, "dtype": "f32"},
        {"batch": 1, "image": large, "dtype": "f16"},
        {"batch": 2, "image": small, "dtype": "bf16"},
        {"batch": 1, "image": 2 * small, "dtype": "f32"},
    ]


# Builders by parameter count (fewest first; detection backbones as
# ``fpn_<backbone>``), so that a run labels the cheap networks first.
_BUILDERS = (
    "squeezenet1_1 squeezenet1_0 shufflenet_v2_x0_5 mnasnet0_5 shufflenet_v2_x1_0 "
    "mobilenet_v3_small lraspp_mobilenet_v3_large mnasnet0_75 shufflenet_v2_x1_5 "
    "mobilenet_v2 mnasnet1_0 efficientnet_b0 mobilenet_v3_large "
    "fpn_mobilenet_v3_large regnet_y_400mf regnet_x_400mf mnasnet1_3 "
    "regnet_y_800mf regnet_x_800mf shufflenet_v2_x2_0 efficientnet_b1 "
    "densenet121 efficientnet_b2 deeplabv3_mobilenet_v3_large regnet_x_1_6gf "
    "regnet_y_1_6gf resnet18 efficientnet_b3 googlenet fpn_resnet18 densenet169 "
    "regnet_x_3_2gf efficientnet_b4 regnet_y_3_2gf densenet201 "
    "efficientnet_v2_s resnet34 resnext50_32x4d resnet50 inception_v3 swin_t "
    "swin_v2_t convnext_tiny densenet161 fpn_resnet50 efficientnet_b5 maxvit_t "
    "fcn_resnet50 regnet_x_8gf deeplabv3_resnet50 regnet_y_8gf efficientnet_b6 "
    "resnet101 swin_s swin_v2_s convnext_small fcn_resnet101 efficientnet_v2_m "
    "regnet_x_16gf deeplabv3_resnet101 resnet152 alexnet efficientnet_b7 "
    "wide_resnet50_2 regnet_y_16gf resnext101_64x4d vit_b_16 swin_b swin_v2_b "
    "vit_b_32 convnext_base resnext101_32x8d regnet_x_32gf efficientnet_v2_l "
    "wide_resnet101_2 vgg11 vgg11_bn vgg13 vgg13_bn vgg16 vgg16_bn vgg19 "
    "vgg19_bn regnet_y_32gf convnext_large vit_l_16 vit_l_32 regnet_y_128gf "
    "vit_h_14"
).split()

# Builders that must be told the image size, and the keyword they take.
_SIZE_KEYWORD = {
    "maxvit_t": "input_size",
    **dict.fromkeys(
        ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"), "image_size"
    ),
}
# Inception v3 needs 75 pixels or more; MaxViT's 7x7 windows fit 224 only.
_IMAGE_SIZES = {"inception_v3": (96, 128), "maxvit_t": (224, 224)}


def _architecture(builder: str) -> tuple[str, Callable, list[dict]]:
    sizes = _sizes(*_IMAGE_SIZES.get(builder, (64, 96)))
    if builder == "maxvit_t":
        sizes = sizes[:2]
    if builder.startswith("fpn_"):
        backbone = builder[len("fpn_") :]
        return (
            f"torchvision {backbone} feature-pyramid backbone (detection models)",
            _fpn_backbone(backbone),
            sizes,
        )
    if builder.startswith(("lraspp_", "deeplabv3_", "fcn_")):
        return (f"torchvision {builder} (segmentation)", _segmentation(builder), sizes)
    if builder in _SIZE_KEYWORD:
        make = _sized_classifier(builder, _SIZE_KEYWORD[builder])
    else:
        make = _classifier(builder)
    return (f"torchvision {builder} (classification)", make, sizes)


#: Family -> (description, make, sizes), fewest parameters first.
ARCHITECTURES: dict[str, tuple[str, Callable, list[dict]]] = {
    f"tv_{builder}": _architecture(builder) for builder in _BUILDERS
}

#: Family -> its programs (parameters with ``dtype``).
TORCHVISION_SIZES: dict[str, list[dict]] = {
    name: sizes for name, (_, _, sizes) in ARCHITECTURES.items()
}
