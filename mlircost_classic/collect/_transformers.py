"""Training source ``transformers``: Hugging Face architectures with random weights.

Each architecture is built from its configuration class
(``AutoConfig.for_model("mistral", hidden_size=64, ...)`` then
``AutoModel.from_config``), never downloaded, and becomes a family
``hf_<model type>`` with a short list of programs (:data:`TRANSFORMERS_SIZES`):
sequence length or image / audio length, batch, width and depth, and element
type (f32, f16, bf16), all small so that labelling is cheap. A program returns
the base model's last hidden state, as in the out-of-distribution suite
(:mod:`._ood`), whose builders it reuses.

The 14 architectures of that suite (BERT, RoBERTa, DistilBERT, ALBERT, GPT-2,
T5, Llama, BART, Whisper, ViT, Swin, ResNet, ConvNeXt, MobileViT) stay
evaluation-only and are not listed here, nor are their variants under another
name (mT5, UMT5, XLM-RoBERTa, CamemBERT). The ``timm`` wrappers are never used.

Kinds of inputs (:data:`ARCHITECTURES` names one per architecture):

- ``text``: ``input_ids`` of encoders, decoders without KV cache and
  state-space models;
- ``decoder``: decoders (mixtures of experts among them) with grouped-query
  attention, as ``text`` and also one decoding step with a KV cache: a new
  token's ids and the past keys and values of every layer as inputs, filled
  into a ``DynamicCache`` inside the program;
- ``seq2seq``: ``input_ids`` and ``decoder_input_ids`` of encoder-decoders;
- ``vision``: ``pixel_values`` of patch-based vision transformers, sized by
  the common width and depth keys;
- ``image``: ``pixel_values`` of convolutional and hierarchical vision models,
  at their configuration's own widths (made small by per-architecture keys);
- ``wave``: raw audio ``input_values`` of speech encoders.

Every listed architecture built and lowered to ``linalg`` at its first size
when the list was made (transformers 5.24.0, torch 2.13.0, torch-mlir
20261001). Three settings make it so: mixtures of experts run their experts
as batched matmuls (``experts_implementation="batched_mm"``; the default
grouped matmul has no torch-mlir lowering), grouped-query decoders get an
explicit ``head_dim`` and GPT-J / CodeGen a ``rotary_dim`` that fit the small
widths. Tried and left out: Funnel and XLNet (their configurations refuse
the common keys), CTRL (export: a non-persistent buffer in the state dict),
LED (export: a data-dependent guard), JetMoE (torch-mlir cannot legalize a
``torch.constant.int``), LeViT and WavLM (torch-mlir's importer:
"Heterogeneous lists are not supported"), CvT (lowering ran past 150 s) and
BiT (its group norms need widths this list does not scale to).
"""

from __future__ import annotations

from collections.abc import Callable

from ._families import _program, _randn
from ._ood import _VOCAB, _exportable, _hidden_state, _ids, _image
from ._torchvision import import_transformers

__all__ = ["ARCHITECTURES", "TRANSFORMERS_SIZES"]

# Special tokens inside the small vocabulary the text models are built with.
_TOKENS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}

_INPUT = {
    "text": "input_ids",
    "decoder": "input_ids",
    "vision": "pixel_values",
    "image": "pixel_values",
    "wave": "input_values",
}

# Heads of 32 channels, and (the fourth) of 64 as in BERT-base, GPT-2 or
# ViT-B: a head's width sets the attention matmuls' N and K, and with it the
# GPU codegen configs (an f32 4x128x64x128 batch matmul uses 154 registers on
# sm_80, the 4x128x32x128 one 32-40). Sequence 96 keeps these programs' texts
# apart from the OOD suite's (sequences 64 and 128), which load_dataset would
# otherwise leave out of both suites.
_TEXT_SIZES = [
    {"batch": 1, "seq": 32, "hidden": 64, "layers": 2, "heads": 2, "dtype": "f32"},
    {"batch": 1, "seq": 64, "hidden": 128, "layers": 2, "heads": 4, "dtype": "f16"},
    {"batch": 2, "seq": 32, "hidden": 64, "layers": 2, "heads": 2, "dtype": "bf16"},
    {"batch": 1, "seq": 96, "hidden": 256, "layers": 2, "heads": 4, "dtype": "f32"},
    {"batch": 1, "seq": 128, "hidden": 128, "layers": 3, "heads": 4, "dtype": "f32"},
    # Added later (appended, so --resume keeps the earlier ones): batch 2 at
    # a width of three heads, whose matmul N (96, 288 for grouped keys and
    # values) no other size has.
    {"batch": 2, "seq": 48, "hidden": 96, "layers": 2, "heads": 3, "dtype": "f32"},
]
_VISION_SIZES = [
    {"batch": 1, "image": 32, "patch": 8, "hidden": 64, "layers": 2, "heads": 2},
    {"batch": 1, "image": 64, "patch": 8, "hidden": 128, "layers": 2, "heads": 4},
    {"batch": 2, "image": 32, "patch": 8, "hidden": 64, "layers": 2, "heads": 2},
    {"batch": 1, "image": 64, "patch": 16, "hidden": 128, "layers": 3, "heads": 4},
]
_IMAGE_SIZES = [
    {"batch": 1, "image": 64, "width": 1},
    {"batch": 1, "image": 96, "width": 2},
    {"batch": 2, "image": 64, "width": 1},
    {"batch": 1, "image": 128, "width": 2},
]
_WAVE_SIZES = [
    {"batch": 1, "samples": 4000, "hidden": 64, "layers": 2, "heads": 2},
    {"batch": 1, "samples": 8000, "hidden": 128, "layers": 2, "heads": 4},
    {"batch": 2, "samples": 4000, "hidden": 64, "layers": 2, "heads": 2},
    {"batch": 1, "samples": 16000, "hidden": 128, "layers": 3, "heads": 4},
]
# One decoding step after ``past`` tokens.
_DECODE_SIZES = [
    {"batch": 1, "past": 32, "hidden": 64, "layers": 2, "heads": 2, "dtype": "f32"},
    {"batch": 2, "past": 64, "hidden": 128, "layers": 2, "heads": 4, "dtype": "f16"},
]
_DTYPES = ("f32", "f16", "bf16", "f32")
_SIZES = {
    "text": _TEXT_SIZES,
    # A decoding step after the first prefill, then the other sizes.
    "decoder": [_TEXT_SIZES[0], _DECODE_SIZES[0], *_TEXT_SIZES[1:], _DECODE_SIZES[1]],
    "seq2seq": _TEXT_SIZES,
    "vision": [{**s, "dtype": d} for s, d in zip(_VISION_SIZES, _DTYPES, strict=True)],
    "image": [{**s, "dtype": d} for s, d in zip(_IMAGE_SIZES, _DTYPES, strict=True)],
    "wave": [{**s, "dtype": d} for s, d in zip(_WAVE_SIZES, _DTYPES, strict=True)],
}


def _common(kind: str, p: dict) -> dict:
    """Configuration keys every architecture of a kind understands."""
    if kind == "image":
        return {"image_size": p["image"], "num_channels": 3}
    config = {
        "hidden_size": p["hidden"],
        "num_hidden_layers": p["layers"],
        "num_attention_heads": p["heads"],
        "intermediate_size": 4 * p["hidden"],
    }
    if kind == "vision":
        config.update(image_size=p["image"], patch_size=p["patch"], num_channels=3)
    elif kind != "wave":
        config.update(vocab_size=_VOCAB, max_position_embeddings=512, **_TOKENS)
    return config


def _inputs(kind: str, p: dict) -> tuple:
    if kind in ("text", "decoder", "seq2seq"):
        return (_ids(p),) * (2 if kind == "seq2seq" else 1)
    if kind == "wave":
        return (_randn(p["batch"], p["samples"]),)
    return (_image(p),)


def _make(model_type: str, kind: str, extra: Callable[[dict], dict]):
    """``make`` for one architecture: its base model's last hidden state."""

    def make(p: dict):
        transformers = import_transformers()

        # ``extra`` overrides the common keys; None drops one.
        keys = {**_common(kind, p), **extra(p)}
        config = transformers.AutoConfig.for_model(
            model_type,
            attn_implementation="eager",
            **{k: v for k, v in keys.items() if v is not None},
        )
        config.use_cache = False
        model = transformers.AutoModel.from_config(config)
        if "past" in p:
            return _decode_step(model, p)
        if kind == "seq2seq":
            program = _hidden_state(model, "input_ids", "decoder_input_ids")
        else:
            program = _hidden_state(model, _INPUT[kind])
        return program, _inputs(kind, p)

    return make


def _decode_step(model, p: dict):
    """One token's step of a decoder, the past keys and values as inputs."""
    transformers = import_transformers()

    config = model.config
    heads = getattr(config, "num_key_value_heads", None) or p["heads"]
    head_dim = getattr(config, "head_dim", None) or p["hidden"] // p["heads"]

    def forward(m, ids, *past):
        cache = transformers.DynamicCache(config=m.model.config)
        for layer in range(len(past) // 2):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        return m.model(input_ids=ids, cache=cache, use_cache=True)[0]

    past = [
        _randn(p["batch"], heads, p["past"], head_dim) for _ in range(2 * p["layers"])
    ]
    inputs = (_ids({"batch": p["batch"], "seq": 1}), *past)
    return _program(forward, model=_exportable(model)), inputs


def _none(p: dict) -> dict:
    return {}


def _kv(p: dict) -> dict:
    """Grouped-query attention: half as many key/value heads (at least one).

    The head size is set too: some configurations default to a fixed one
    (Gemma 256, Helium 128) whatever the width.
    """
    return {
        "num_key_value_heads": max(1, p["heads"] // 2),
        "head_dim": p["hidden"] // p["heads"],
    }


def _rotary_half(p: dict) -> dict:
    # Rotary embedding on half of each head (the default is 64 channels).
    return {"rotary_dim": p["hidden"] // p["heads"] // 2}


def _moe(p: dict) -> dict:
    # The experts as batched matmuls over gathered weights: static shapes,
    # where the default grouped matmul has no torch-mlir lowering.
    return {
        **_kv(p),
        "experts_implementation": "batched_mm",
        "num_local_experts": 4,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 2 * p["hidden"],
        "shared_expert_intermediate_size": 2 * p["hidden"],
    }


def _gpt_neo(p: dict) -> dict:
    # Local (windowed) and global attention layers alternate.
    layers = p["layers"]
    return {
        "attention_types": [
            [["global", "local"], layers // 2],
            [["global"], layers % 2],
        ]
    }


def _seq2seq(p: dict) -> dict:
    return {
        "d_model": p["hidden"],
        "encoder_layers": p["layers"],
        "decoder_layers": p["layers"],
        "encoder_attention_heads": p["heads"],
        "decoder_attention_heads": p["heads"],
        "encoder_ffn_dim": 4 * p["hidden"],
        "decoder_ffn_dim": 4 * p["hidden"],
        "decoder_start_token_id": 1,
    }


def _mamba(p: dict) -> dict:
    return {"state_size": 16, "expand": 2, "conv_kernel": 4}


def _mamba2(p: dict) -> dict:
    return {
        "state_size": 16,
        "expand": 2,
        "head_dim": 16,
        "num_heads": 2 * p["hidden"] // 16,
        "n_groups": 1,
        "chunk_size": 16,
    }


def _stages(base: tuple[int, ...]) -> Callable[[dict], dict]:
    """Hierarchical vision models: stage widths times the size's ``width``."""

    def extra(p: dict) -> dict:
        return {
            "hidden_sizes": [w * p["width"] for w in base],
            "depths": [1] * len(base),
        }

    return extra


def _regnet(p: dict) -> dict:
    return {
        "embedding_size": 16 * p["width"],
        "hidden_sizes": [w * p["width"] for w in (24, 48, 96, 192)],
        "depths": [1, 1, 2, 1],
        "groups_width": 8,
    }


def _efficientnet(p: dict) -> dict:
    return {
        "width_coefficient": 0.5 * p["width"],
        "depth_coefficient": 0.5,
        "hidden_dim": 640 * p["width"],
    }


def _mobilenet(p: dict) -> dict:
    return {"depth_multiplier": 0.25 * p["width"]}


#: Family -> (description, make, sizes).
ARCHITECTURES: dict[str, tuple[str, Callable, list[dict]]] = {}

for _name, _kind, _extra, _description in (
    # encoders
    ("electra", "text", _none, "ELECTRA encoder"),
    ("deberta", "text", _none, "DeBERTa encoder: disentangled attention"),
    ("deberta-v2", "text", _none, "DeBERTa-v2 encoder"),
    ("mpnet", "text", _none, "MPNet encoder: relative position buckets"),
    ("convbert", "text", _none, "ConvBERT encoder: span-based dynamic convolution"),
    (
        "squeezebert",
        "text",
        lambda p: {"embedding_size": p["hidden"]},
        "SqueezeBERT encoder: grouped convolutions",
    ),
    ("mobilebert", "text", _none, "MobileBERT encoder: bottlenecks"),
    ("nystromformer", "text", _none, "Nystromformer encoder: Nystrom attention"),
    ("roformer", "text", _none, "RoFormer encoder: rotary positions"),
    ("ernie", "text", _none, "ERNIE encoder"),
    ("modernbert", "text", _none, "ModernBERT encoder: rotary, GeGLU, local attention"),
    ("megatron-bert", "text", _none, "Megatron-BERT encoder: pre-norm"),
    ("rembert", "text", _none, "RemBERT encoder: decoupled embeddings"),
    ("roc_bert", "text", _none, "RoCBert encoder"),
    ("nomic_bert", "text", _none, "Nomic BERT encoder: rotary, SwiGLU"),
    ("esm", "text", _none, "ESM protein encoder: rotary"),
    ("ibert", "text", _none, "I-BERT encoder"),
    # decoders (no KV cache)
    ("mistral", "decoder", _kv, "Mistral decoder: sliding window, GQA"),
    ("qwen2", "decoder", _kv, "Qwen2 decoder: QKV bias, GQA"),
    ("qwen3", "decoder", _kv, "Qwen3 decoder: QK norm"),
    ("gemma", "decoder", _kv, "Gemma decoder: GeGLU, scaled embeddings"),
    ("gemma2", "decoder", _kv, "Gemma 2 decoder: soft-capping, alternating windows"),
    ("gemma3_text", "decoder", _kv, "Gemma 3 text decoder"),
    ("phi", "text", _none, "Phi decoder: parallel attention and MLP, partial rotary"),
    ("phi3", "decoder", _kv, "Phi-3 decoder: fused QKV"),
    ("stablelm", "decoder", _kv, "StableLM decoder"),
    ("falcon", "text", _none, "Falcon decoder: multi-query, parallel blocks"),
    ("gpt_neox", "text", _none, "GPT-NeoX decoder: parallel residual"),
    ("gpt_neo", "text", _gpt_neo, "GPT-Neo decoder: local and global attention"),
    ("gptj", "text", _rotary_half, "GPT-J decoder: rotary, parallel blocks"),
    ("opt", "text", _none, "OPT decoder: learned positions"),
    ("bloom", "text", _none, "BLOOM decoder: ALiBi"),
    ("codegen", "text", _rotary_half, "CodeGen decoder"),
    ("olmo", "decoder", _kv, "OLMo decoder: non-parametric layer norm"),
    ("olmo2", "decoder", _kv, "OLMo 2 decoder: QK norm, post-norm"),
    ("cohere", "decoder", _kv, "Cohere decoder: parallel blocks, layer norm"),
    ("granite", "decoder", _kv, "Granite decoder: scaled residuals"),
    ("starcoder2", "decoder", _kv, "StarCoder2 decoder"),
    ("persimmon", "text", _none, "Persimmon decoder: squared ReLU, QK layer norm"),
    ("biogpt", "text", _none, "BioGPT decoder"),
    ("xglm", "text", _none, "XGLM decoder: sinusoidal positions"),
    ("mpt", "text", _none, "MPT decoder: ALiBi"),
    ("gpt_bigcode", "text", _none, "GPT-BigCode decoder: multi-query attention"),
    ("helium", "decoder", _kv, "Helium decoder"),
    ("glm", "decoder", _kv, "GLM decoder"),
    ("smollm3", "decoder", _kv, "SmolLM3 decoder: no rotary in some layers"),
    ("openai-gpt", "text", _none, "GPT-1 decoder: post-norm"),
    # mixtures of experts
    ("mixtral", "decoder", _moe, "Mixtral: sparse mixture of experts"),
    ("qwen2_moe", "decoder", _moe, "Qwen2-MoE: shared expert"),
    ("qwen3_moe", "decoder", _moe, "Qwen3-MoE"),
    ("olmoe", "decoder", _moe, "OLMoE: mixture of experts"),
    ("granitemoe", "decoder", _moe, "Granite MoE"),
    ("phimoe", "decoder", _moe, "Phi-MoE"),
    # state-space and recurrent models
    ("mamba", "text", _mamba, "Mamba: selective state space"),
    ("mamba2", "text", _mamba2, "Mamba-2: state space duality"),
    ("falcon_mamba", "text", _mamba, "Falcon-Mamba"),
    ("rwkv", "text", _none, "RWKV: linear attention recurrence"),
    ("recurrent_gemma", "text", _kv, "RecurrentGemma: RG-LRU and local attention"),
    ("jamba", "text", _moe, "Jamba: Mamba, attention and experts"),
    # encoder-decoders
    ("marian", "seq2seq", _seq2seq, "Marian encoder-decoder: sinusoidal positions"),
    ("pegasus", "seq2seq", _seq2seq, "Pegasus encoder-decoder: pre-norm"),
    ("mbart", "seq2seq", _seq2seq, "mBART encoder-decoder: pre-norm"),
    ("m2m_100", "seq2seq", _seq2seq, "M2M-100 encoder-decoder"),
    ("blenderbot-small", "seq2seq", _seq2seq, "BlenderbotSmall encoder-decoder"),
    ("plbart", "seq2seq", _seq2seq, "PLBART encoder-decoder"),
    # patch-based vision transformers
    ("deit", "vision", _none, "DeiT: distillation token"),
    ("beit", "vision", _none, "BEiT: relative position bias"),
    ("data2vec-vision", "vision", _none, "Data2Vec vision encoder"),
    ("dinov2", "vision", _none, "DINOv2: layer scale, interpolated positions"),
    ("vit_msn", "vision", _none, "ViT-MSN encoder"),
    ("ijepa", "vision", _none, "I-JEPA encoder: no class token"),
    ("siglip_vision_model", "vision", _none, "SigLIP vision tower"),
    ("clip_vision_model", "vision", _none, "CLIP vision tower: quick GELU"),
    (
        "yolos",
        "vision",
        lambda p: {"image_size": [p["image"]] * 2},
        "YOLOS encoder: detection tokens",
    ),
    # convolutional and hierarchical vision models
    ("regnet", "image", _regnet, "RegNet: grouped bottlenecks"),
    ("efficientnet", "image", _efficientnet, "EfficientNet: MBConv, squeeze-excite"),
    ("mobilenet_v1", "image", _mobilenet, "MobileNet v1: depthwise separable"),
    ("mobilenet_v2", "image", _mobilenet, "MobileNet v2: inverted residuals"),
    ("convnextv2", "image", _stages((24, 48, 96, 192)), "ConvNeXt V2: GRN"),
    ("poolformer", "image", _stages((16, 32, 80, 128)), "PoolFormer: pooling mixer"),
    ("focalnet", "image", _stages((32, 64, 128, 256)), "FocalNet: focal modulation"),
    ("swinv2", "image", _none, "Swin V2: cosine attention, log-spaced positions"),
    ("pvt", "image", _stages((32, 64, 160, 256)), "PVT: spatial-reduction attention"),
    ("pvt_v2", "image", _stages((32, 64, 160, 256)), "PVT v2: overlapping patches"),
    ("segformer", "image", _stages((32, 64, 160, 256)), "SegFormer encoder"),
    # speech encoders on raw audio
    ("wav2vec2", "wave", _none, "wav2vec 2.0: conv feature encoder + transformer"),
    ("hubert", "wave", _none, "HuBERT speech encoder"),
    ("data2vec-audio", "wave", _none, "Data2Vec audio encoder"),
    ("sew", "wave", _none, "SEW: squeezed sequence"),
    ("sew-d", "wave", _none, "SEW-D: disentangled attention"),
    ("unispeech", "wave", _none, "UniSpeech speech encoder"),
    ("unispeech-sat", "wave", _none, "UniSpeech-SAT speech encoder"),
    ("wav2vec2-conformer", "wave", _none, "wav2vec 2.0 Conformer"),
):
    ARCHITECTURES["hf_" + _name.replace("-", "_")] = (
        f"{_description} ({_kind}; transformers model type {_name!r})",
        _make(_name, _kind, _extra),
        _SIZES[_kind],
    )

#: Family -> its programs (parameters with ``dtype``).
TRANSFORMERS_SIZES: dict[str, list[dict]] = {
    name: sizes for name, (_, _, sizes) in ARCHITECTURES.items()
}
