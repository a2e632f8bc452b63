"""Out-of-distribution suite: real architectures from Hugging Face ``transformers``.

The training families (:mod:`._families`) were written for this project. To see
how a cost model does on programs it was not designed around, this suite builds
published architectures from ``transformers`` configuration classes (BERT,
GPT-2, T5 encoder, ViT, ...) with random weights: a ``BertConfig(...)`` and
``BertModel(config)``, never a download. Each architecture is an OOD *family*
(``hf_bert``, ``hf_gpt2`` ...) with a short, fixed list of sizes
(:data:`OOD_SIZES`) scaled down so that a program compiles and runs under
callgrind in about a minute here; the structure (embeddings, attention
variant, normalization, activation, position scheme, stages) is the
architecture's own.

The specs are :class:`~._families.ProgramSpec` like the training ones, so the
collector lowers, compiles and measures them with the same tools and flags
(``mlircost collect --suite ood``). Their records are bundled apart, in
``mlircost_classic/data/ood/``, and read only by
``load_dataset(..., suite="ood")``: they are for evaluation, never training.

``transformers`` (the ``[ood]`` extra, pinned to 5.24.0 with torch 2.13.0)
and torch are imported only when a program is built.

Every architecture listed builds and lowers to ``torch`` and ``linalg`` at
each of its sizes; none was dropped. Two workarounds keep it so: buffers made
persistent (:func:`_hidden_state`) and Swin's bias gathered by
``index_select`` (:func:`_relative_position_bias`). Some *levels* do not lower,
and the records say so: the ``affine`` level of ``hf_gpt2``, ``hf_llama`` and
``hf_roberta`` (their position ids and masks are a cumulative sum, which
torch-mlir emits as ``tm_tensor.scan``, an op ``iree-opt``'s bufferization
does not know), and the ``tosa`` level of the larger ``hf_swin`` (the shifted
windows' ``torch.roll`` becomes a slice of dynamic size that torch-mlir's
TOSA conversion rejects). Labels come from the ``linalg`` level, as for the
training families.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence

from ._families import Family, ProgramSpec, _program, _randn
from ._sources import _fixed_families
from ._torchvision import import_transformers

__all__ = ["OOD_FAMILIES", "OOD_SIZES", "ood_specs"]

# Text models see token ids; a small vocabulary keeps the (never stored)
# embedding tables small without changing the program's structure.
_VOCAB = 1024


def _ids(p: dict):
    import torch

    return torch.randint(0, _VOCAB, (p["batch"], p["seq"]))


def _image(p: dict, channels: int = 3):
    return _randn(p["batch"], channels, p["image"], p["image"])


def _exportable(model):
    """The model in eval mode with every buffer persistent, ready to lower."""
    model.eval()
    # transformers keeps position ids, rotary frequencies and relative
    # position indices in non-persistent buffers, which torch-mlir's importer
    # cannot find ("Could not find state mapping for buffer"); as persistent
    # buffers they are the same constants in the program.
    for sub in model.modules():
        sub._non_persistent_buffers_set.clear()
    return model


def _hidden_state(model, *arguments: str):
    """A program returning the model's last hidden state (a plain tensor).

    Its inputs are passed to the model as the keyword ``arguments``, in order.
    """

    def forward(m, *inputs):
        return m.model(**dict(zip(arguments, inputs, strict=True)))[0]

    return _program(forward, model=_exportable(model))


def _text(config_class: str, model_class: str, config: Callable[[dict], dict]):
    """``make`` for a text encoder or decoder fed ``input_ids``."""

    def make(p: dict):
        transformers = import_transformers()

        cfg = getattr(transformers, config_class)(
            vocab_size=_VOCAB, attn_implementation=p["attn"], **config(p)
        )
        model = getattr(transformers, model_class)(cfg)
        return _hidden_state(model, "input_ids"), (_ids(p),)

    return make


def _bert_like(p: dict) -> dict:
    return {
        "hidden_size": p["hidden"],
        "num_hidden_layers": p["layers"],
        "num_attention_heads": p["heads"],
        "intermediate_size": 4 * p["hidden"],
        "max_position_embeddings": 512,
    }


def _roberta(p: dict) -> dict:
    # RoBERTa's position ids start after the padding index.
    return {**_bert_like(p), "max_position_embeddings": 514}


def _distilbert(p: dict) -> dict:
    return {
        "dim": p["hidden"],
        "n_layers": p["layers"],
        "n_heads": p["heads"],
        "hidden_dim": 4 * p["hidden"],
    }


def _albert(p: dict) -> dict:
    # One shared layer applied ``layers`` times, factorized embeddings.
    return {**_bert_like(p), "embedding_size": p["embedding"]}


def _gpt2(p: dict) -> dict:
    return {
        "n_embd": p["hidden"],
        "n_layer": p["layers"],
        "n_head": p["heads"],
        "n_positions": 1024,
        # GPT-2's one special token is the last of its vocabulary.
        "bos_token_id": _VOCAB - 1,
        "eos_token_id": _VOCAB - 1,
        "use_cache": False,
    }


def _t5(p: dict) -> dict:
    return {
        "d_model": p["hidden"],
        "d_kv": p["hidden"] // p["heads"],
        "d_ff": p["ffn"],
        "num_layers": p["layers"],
        "num_heads": p["heads"],
        "feed_forward_proj": p["ffn_act"],
        "use_cache": False,
    }


def _llama(p: dict) -> dict:
    return {
        "hidden_size": p["hidden"],
        "intermediate_size": p["ffn"],
        "num_hidden_layers": p["layers"],
        "num_attention_heads": p["heads"],
        "num_key_value_heads": p["kv_heads"],
        "max_position_embeddings": 2048,
        "use_cache": False,
    }


def _make_bart_encoder(p: dict):
    transformers = import_transformers()

    cfg = transformers.BartConfig(
        vocab_size=_VOCAB,
        d_model=p["hidden"],
        encoder_layers=p["layers"],
        encoder_attention_heads=p["heads"],
        encoder_ffn_dim=4 * p["hidden"],
        decoder_layers=1,
        decoder_attention_heads=p["heads"],
        decoder_ffn_dim=4 * p["hidden"],
        max_position_embeddings=1024,
        use_cache=False,
        attn_implementation=p["attn"],
    )
    encoder = transformers.BartModel(cfg).get_encoder()
    return _hidden_state(encoder, "input_ids"), (_ids(p),)


def _make_whisper_encoder(p: dict):
    transformers = import_transformers()

    cfg = transformers.WhisperConfig(
        vocab_size=_VOCAB,
        num_mel_bins=p["mels"],
        d_model=p["hidden"],
        encoder_layers=p["layers"],
        encoder_attention_heads=p["heads"],
        encoder_ffn_dim=4 * p["hidden"],
        decoder_layers=1,
        decoder_attention_heads=p["heads"],
        decoder_ffn_dim=4 * p["hidden"],
        # The encoder insists on exactly 2 * max_source_positions frames.
        max_source_positions=p["frames"] // 2,
        # Special tokens of the (unused) decoder inside the small vocabulary.
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        use_cache=False,
        attn_implementation=p["attn"],
    )
    encoder = transformers.WhisperModel(cfg).get_encoder()
    features = _randn(p["batch"], p["mels"], p["frames"])
    return _hidden_state(encoder, "input_features"), (features,)


def _make_vit(p: dict):
    transformers = import_transformers()

    cfg = transformers.ViTConfig(
        image_size=p["image"],
        patch_size=p["patch"],
        hidden_size=p["hidden"],
        num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"],
        intermediate_size=4 * p["hidden"],
        attn_implementation=p["attn"],
    )
    model = transformers.ViTModel(cfg, add_pooling_layer=False)
    return _hidden_state(model, "pixel_values"), (_image(p),)


def _make_swin(p: dict):
    transformers = import_transformers()

    cfg = transformers.SwinConfig(
        image_size=p["image"],
        patch_size=4,
        embed_dim=p["embed"],
        depths=p["depths"],
        num_heads=p["heads"],
        window_size=p["window"],
    )
    model = transformers.SwinModel(cfg, add_pooling_layer=False)
    for sub in model.modules():
        if type(sub).__name__ == "SwinRelativePositionBias":
            sub.forward = types.MethodType(_relative_position_bias, sub)
    return _hidden_state(model, "pixel_values"), (_image(p),)


def _relative_position_bias(self):
    """Swin's relative position bias, gathered by ``index_select``.

    The same gather as ``table[index]``, whose index list torch-mlir's importer
    rejects ("Heterogeneous lists are not supported") when the index is a buffer.
    """
    bias = self.relative_position_bias_table.index_select(
        0, self.relative_position_index
    )
    bias = bias.view(self.window_area, self.window_area, -1)
    return bias.permute(2, 0, 1).contiguous().unsqueeze(0)


def _make_resnet(p: dict):
    transformers = import_transformers()

    cfg = transformers.ResNetConfig(
        embedding_size=p["stem"],
        hidden_sizes=p["widths"],
        depths=p["depths"],
        layer_type=p["block"],
    )
    model = transformers.ResNetModel(cfg)
    return _hidden_state(model, "pixel_values"), (_image(p),)


def _make_convnext(p: dict):
    transformers = import_transformers()

    cfg = transformers.ConvNextConfig(
        hidden_sizes=p["widths"], depths=p["depths"], image_size=p["image"]
    )
    model = transformers.ConvNextModel(cfg)
    return _hidden_state(model, "pixel_values"), (_image(p),)


def _make_mobilevit(p: dict):
    transformers = import_transformers()

    cfg = transformers.MobileViTConfig(
        image_size=p["image"],
        hidden_sizes=p["hidden"],
        neck_hidden_sizes=p["neck"],
        expand_ratio=p["expand"],
        num_attention_heads=4,
    )
    model = transformers.MobileViTModel(cfg, expand_output=False)
    return _hidden_state(model, "pixel_values"), (_image(p),)


def _text_sizes(**extra) -> list[dict]:
    """The four sizes of a text model (plus fixed ``extra``).

    A small and a base-like size (the suite's first two), then a batch of two
    short sequences at a third width and one wide, shallow model.
    """
    return [
        {"batch": 1, "seq": 64, "hidden": 128, "layers": 2, "heads": 2, **extra},
        {"batch": 1, "seq": 128, "hidden": 256, "layers": 4, "heads": 4, **extra},
        {"batch": 2, "seq": 32, "hidden": 192, "layers": 2, "heads": 3, **extra},
        {"batch": 1, "seq": 96, "hidden": 384, "layers": 2, "heads": 6, **extra},
    ]


#: Architecture -> (description, make, sizes). ``attn`` is the attention
#: implementation asked of ``transformers`` ("sdpa" or "eager").
_ARCHITECTURES: dict[str, tuple[str, Callable, list[dict]]] = {
    "hf_bert": (
        "BERT encoder (BertModel): post-norm, GELU, learned positions",
        _text("BertConfig", "BertModel", _bert_like),
        _text_sizes(attn="sdpa"),
    ),
    "hf_roberta": (
        "RoBERTa encoder (RobertaModel): BERT with padding-offset positions",
        _text("RobertaConfig", "RobertaModel", _roberta),
        _text_sizes(attn="eager"),
    ),
    "hf_distilbert": (
        "DistilBERT encoder (DistilBertModel): no token types, no pooler",
        _text("DistilBertConfig", "DistilBertModel", _distilbert),
        [
            {
                "batch": 1,
                "seq": 64,
                "hidden": 128,
                "layers": 2,
                "heads": 2,
                "attn": "sdpa",
            },
            {
                "batch": 2,
                "seq": 64,
                "hidden": 256,
                "layers": 3,
                "heads": 4,
                "attn": "eager",
            },
            {
                "batch": 2,
                "seq": 32,
                "hidden": 192,
                "layers": 2,
                "heads": 3,
                "attn": "sdpa",
            },
            {
                "batch": 1,
                "seq": 96,
                "hidden": 384,
                "layers": 2,
                "heads": 6,
                "attn": "eager",
            },
        ],
    ),
    "hf_albert": (
        "ALBERT encoder (AlbertModel): factorized embeddings, one shared layer",
        _text("AlbertConfig", "AlbertModel", _albert),
        _text_sizes(attn="eager", embedding=64),
    ),
    "hf_gpt2": (
        "GPT-2 decoder (GPT2Model, use_cache=False): pre-norm, causal, Conv1D",
        _text("GPT2Config", "GPT2Model", _gpt2),
        _text_sizes(attn="eager"),
    ),
    "hf_t5_encoder": (
        "T5 encoder (T5EncoderModel): RMS norm, relative position buckets",
        _text("T5Config", "T5EncoderModel", _t5),
        [
            {
                "batch": 1,
                "seq": 64,
                "hidden": 128,
                "layers": 2,
                "heads": 4,
                "ffn": 512,
                "ffn_act": "relu",
                "attn": "eager",
            },
            {
                "batch": 1,
                "seq": 128,
                "hidden": 256,
                "layers": 4,
                "heads": 4,
                "ffn": 640,
                "ffn_act": "gated-gelu",
                "attn": "eager",
            },
            {
                "batch": 2,
                "seq": 32,
                "hidden": 192,
                "layers": 2,
                "heads": 3,
                "ffn": 768,
                "ffn_act": "gated-gelu",
                "attn": "eager",
            },
            {
                "batch": 1,
                "seq": 96,
                "hidden": 384,
                "layers": 2,
                "heads": 6,
                "ffn": 1024,
                "ffn_act": "relu",
                "attn": "eager",
            },
        ],
    ),
    "hf_llama": (
        "Llama decoder (LlamaModel, use_cache=False): RMS norm, rotary, SwiGLU, GQA",
        _text("LlamaConfig", "LlamaModel", _llama),
        [
            {
                "batch": 1,
                "seq": 64,
                "hidden": 128,
                "layers": 2,
                "heads": 4,
                "kv_heads": 2,
                "ffn": 344,
                "attn": "sdpa",
            },
            {
                "batch": 1,
                "seq": 128,
                "hidden": 256,
                "layers": 4,
                "heads": 8,
                "kv_heads": 2,
                "ffn": 688,
                "attn": "eager",
            },
            {
                "batch": 2,
                "seq": 32,
                "hidden": 192,
                "layers": 2,
                "heads": 6,
                "kv_heads": 2,
                "ffn": 512,
                "attn": "eager",
            },
            {
                "batch": 1,
                "seq": 96,
                "hidden": 384,
                "layers": 2,
                "heads": 6,
                "kv_heads": 3,
                "ffn": 1024,
                "attn": "sdpa",
            },
        ],
    ),
    "hf_bart_encoder": (
        "BART encoder (BartModel.get_encoder()): learned offset positions, GELU",
        _make_bart_encoder,
        _text_sizes(attn="eager"),
    ),
    "hf_whisper_encoder": (
        "Whisper encoder (WhisperModel.get_encoder()): conv stem over mel frames",
        _make_whisper_encoder,
        [
            {
                "batch": 1,
                "mels": 80,
                "frames": 128,
                "hidden": 128,
                "layers": 2,
                "heads": 2,
                "attn": "eager",
            },
            {
                "batch": 1,
                "mels": 80,
                "frames": 256,
                "hidden": 256,
                "layers": 3,
                "heads": 4,
                "attn": "sdpa",
            },
            {
                "batch": 2,
                "mels": 80,
                "frames": 64,
                "hidden": 192,
                "layers": 2,
                "heads": 3,
                "attn": "eager",
            },
            {
                "batch": 1,
                "mels": 80,
                "frames": 192,
                "hidden": 384,
                "layers": 2,
                "heads": 6,
                "attn": "sdpa",
            },
        ],
    ),
    "hf_vit": (
        "ViT encoder (ViTModel): patch embedding, class token, pre-norm",
        _make_vit,
        [
            {
                "batch": 1,
                "image": 64,
                "patch": 8,
                "hidden": 192,
                "layers": 3,
                "heads": 3,
                "attn": "sdpa",
            },
            {
                "batch": 1,
                "image": 128,
                "patch": 16,
                "hidden": 384,
                "layers": 4,
                "heads": 6,
                "attn": "eager",
            },
            {
                "batch": 1,
                "image": 96,
                "patch": 8,
                "hidden": 256,
                "layers": 2,
                "heads": 4,
                "attn": "eager",
            },
            {
                "batch": 2,
                "image": 64,
                "patch": 16,
                "hidden": 384,
                "layers": 2,
                "heads": 6,
                "attn": "sdpa",
            },
        ],
    ),
    "hf_swin": (
        "Swin transformer (SwinModel): shifted windows, patch merging",
        _make_swin,
        [
            {
                "batch": 1,
                "image": 64,
                "embed": 32,
                "depths": [1, 1, 2],
                "heads": [2, 4, 8],
                "window": 4,
            },
            {
                "batch": 1,
                "image": 128,
                "embed": 48,
                "depths": [2, 2, 2, 2],
                "heads": [3, 6, 12, 24],
                "window": 4,
            },
            {
                "batch": 1,
                "image": 64,
                "embed": 48,
                "depths": [2, 2, 2],
                "heads": [3, 6, 12],
                "window": 4,
            },
            {
                "batch": 1,
                "image": 128,
                "embed": 32,
                "depths": [1, 1, 1, 1],
                "heads": [2, 4, 8, 16],
                "window": 4,
            },
        ],
    ),
    "hf_resnet": (
        "ResNet (ResNetModel): 7x7 stem, basic or bottleneck stages, batch norm",
        _make_resnet,
        [
            {
                "batch": 1,
                "image": 64,
                "stem": 32,
                "widths": [32, 64, 128, 256],
                "depths": [1, 1, 1, 1],
                "block": "basic",
            },
            {
                "batch": 1,
                "image": 128,
                "stem": 64,
                "widths": [128, 256, 512, 1024],
                "depths": [2, 2, 2, 2],
                "block": "bottleneck",
            },
            {
                "batch": 1,
                "image": 96,
                "stem": 32,
                "widths": [64, 128, 256, 512],
                "depths": [1, 1, 1, 1],
                "block": "basic",
            },
            {
                "batch": 2,
                "image": 64,
                "stem": 32,
                "widths": [64, 128, 256, 512],
                "depths": [1, 1, 1, 1],
                "block": "bottleneck",
            },
        ],
    ),
    "hf_convnext": (
        "ConvNeXt (ConvNextModel): patchify stem, 7x7 depthwise, layer scale",
        _make_convnext,
        [
            {
                "batch": 1,
                "image": 96,
                "widths": [24, 48, 96, 192],
                "depths": [1, 1, 2, 1],
            },
            {
                "batch": 1,
                "image": 128,
                "widths": [48, 96, 192, 384],
                "depths": [2, 2, 4, 2],
            },
            {
                "batch": 1,
                "image": 64,
                "widths": [32, 64, 128, 256],
                "depths": [1, 1, 1, 1],
            },
            {
                "batch": 1,
                "image": 160,
                "widths": [24, 48, 96, 192],
                "depths": [1, 1, 1, 1],
            },
        ],
    ),
    "hf_mobilevit": (
        "MobileViT (MobileViTModel): inverted residuals with unfolded attention",
        _make_mobilevit,
        [
            {
                "batch": 1,
                "image": 64,
                "hidden": [64, 80, 96],
                "neck": [16, 16, 24, 48, 64, 80, 320],
                "expand": 2.0,
            },
            {
                "batch": 1,
                "image": 128,
                "hidden": [96, 120, 144],
                "neck": [16, 32, 48, 64, 80, 96, 384],
                "expand": 4.0,
            },
            {
                "batch": 1,
                "image": 64,
                "hidden": [96, 120, 144],
                "neck": [16, 32, 48, 64, 80, 96, 384],
                "expand": 4.0,
            },
            {
                "batch": 1,
                "image": 128,
                "hidden": [64, 80, 96],
                "neck": [16, 16, 24, 48, 64, 80, 320],
                "expand": 2.0,
            },
        ],
    ),
}

#: OOD family name -> its sizes (parameters without ``dtype``).
OOD_SIZES: dict[str, list[dict]] = {
    name: sizes for name, (_, _, sizes) in _ARCHITECTURES.items()
}

#: The OOD families, by name; ``sample`` draws one of the listed sizes.
OOD_FAMILIES: dict[str, Family] = _fixed_families(_ARCHITECTURES)


def ood_specs(families: Sequence[str] | None = None) -> list[ProgramSpec]:
    """The specs of the OOD suite: every listed size of every architecture, in f32.

    Parameters
    ----------
    families : sequence of str, optional
        OOD family names (``"hf_bert"`` ...); default all, sorted by name.

    Returns
    -------
    list of ProgramSpec

    Raises
    ------
    ValueError
        If a family name is not an OOD family.
    """
    names = sorted(OOD_FAMILIES) if families is None else list(dict.fromkeys(families))
    unknown = [n for n in names if n not in OOD_FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown OOD families {unknown}; choose from {sorted(OOD_FAMILIES)}"
        )
    return [
        ProgramSpec(name, {**size, "dtype": "f32"})
        for name in names
        for size in OOD_SIZES[name]
    ]
