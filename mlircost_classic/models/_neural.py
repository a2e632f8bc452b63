"""Neural text baselines: MLIR token sequence -> transformer / LSTM / CNN.

:class:`NeuralTextRegressor` is the baseline in the spirit of Das &
Mannarswamy (2023), "ML-driven Hardware Cost Model for MLIR": the program is
read as a sequence of tokens (ops, types, bucketed shapes) and one network
predicts every target at once. It learns its own features, where
:class:`~mlircost_classic.models.CostModel` relies on hand-made ones.

torch is an optional dependency (the ``[neural]`` extra): it is imported inside
``fit`` and ``predict`` only, so importing this module never needs it. The
fitted weights are kept as numpy arrays, so a fitted model pickles without
torch-specific state.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..mlir import MLIRSyntaxError, ShapedType, parse, parse_type
from ._base import TextInputMixin, check_targets
from ._cost_model import CostModel

__all__ = ["NeuralTextRegressor", "tokenize"]

PAD, UNK, CLS, CUT = "<pad>", "<unk>", "<cls>", "<cut>"
_SPECIALS = (PAD, UNK, CLS, CUT)

# Attributes implied by the op that carries them (every linalg.generic has
# indexing maps, every arith.constant a value): their keys add no information.
_IMPLIED_KEYS = frozenset({"indexing_maps", "value"})
_WORD = re.compile(r"[A-Za-z_]\w*")
_ITERATOR = re.compile(r"parallel|reduction|window")

# The fallback lexer: shaped types and dotted op names, in text order. An op
# name is not preceded by a sigil (%value, @symbol, #alias, !type, ^block).
_FALLBACK = re.compile(
    r"(?P<type>\b(?:tensor|memref|vector)<[^<>]*>)"
    r"|(?<![\w%@#!^.$\"])\"?(?P<op>[a-z_][\w$]*\.[a-z_][\w$.]*)\"?(?=[\s(<{:\"]|$)"
)


def _dim_token(d: int | None) -> str:
    """Half-octave bucket of a dimension: ``d<round(2 log2 d)>``."""
    if d is None:
        return "d?"
    if d <= 0:
        return "d0size"
    return f"d{round(2 * math.log2(d))}"


def _type_tokens(t: ShapedType) -> list[str]:
    """``tensor<64x140xf32>`` -> ``tensor:f32 d12 d14 n13``; ``f32`` -> ``f32``."""
    if t.kind == "scalar":
        return [t.element or "scalar"]
    if t.kind == "other":
        head = _WORD.search(t.raw)
        return [f"!{head.group() if head else 'other'}"]
    kind = f"{t.kind}:{t.element or '?'}"
    if t.shape is None:
        return [kind, "unranked"]
    tokens = [kind, *(_dim_token(d) for d in t.shape)]
    numel = t.numel
    if numel is not None and numel > 0:
        tokens.append(f"n{round(math.log2(numel))}")
    return tokens


def _attribute_tokens(attributes: dict[str, str]) -> list[str]:
    tokens = []
    for key, value in attributes.items():
        if key == "iterator_types":
            # One token for the loop nest: "=ppr" is parallel, parallel, reduction.
            kinds = "".join(word[0] for word in _ITERATOR.findall(value))
            tokens.append(f"={kinds}")
        elif key == "predicate":
            tokens.extend(f"={word}" for word in _WORD.findall(value))
        elif key not in _IMPLIED_KEYS:
            tokens.append(f"@{key}")
    return tokens


def _parsed_tokens(text: str) -> list[str]:
    tokens = []
    for op in parse(text).ops:
        tokens.append(op.name)
        tokens.extend(_attribute_tokens(op.attributes))
        seen = set()
        # Results first; then the operand types that differ from them (the
        # contraction sizes of a matmul, the input of a reshape).
        for t in (*op.result_types, *op.operand_types):
            if t.raw not in seen:
                seen.add(t.raw)
                tokens.extend(_type_tokens(t))
    return tokens


def _fallback_tokens(text: str) -> list[str]:
    tokens = []
    for m in _FALLBACK.finditer(text):
        if m.group("op"):
            tokens.append(m.group("op"))
        else:
            tokens.extend(_type_tokens(parse_type(m.group("type"))))
    return tokens


def tokenize(text: str) -> list[str]:
    """The token sequence the neural baselines read from one MLIR text.

    Each op, in program order (an op before the ops of its regions), gives its
    name (``linalg.matmul``); its attributes: the values of
    ``iterator_types`` and ``predicate`` (``=parallel``, ``=reduction``,
    ``=ogt``) and the keys of the others (``@strides``), except keys every
    such op has (``indexing_maps``, ``value``); then the types of its results
    and of its operands, each distinct type once. A type gives its kind and
    element type and, for a ranked shaped type, one token per dimension, its
    half-octave bucket ``d<round(2 log2 d)>`` (``d?`` when dynamic), and the
    octave of its number of elements ``n<round(log2 numel)>``: ``tensor<64x140
    xf32>`` -> ``tensor:f32 d12 d14 n13``. SSA names, symbols, constants and
    affine maps are left out. Texts the MLIR reader rejects are lexed with a
    regular expression instead (op names and shaped types only).

    Parameters
    ----------
    text : str
        One MLIR text.

    Returns
    -------
    list of str
    """
    try:
        return _parsed_tokens(text)
    except MLIRSyntaxError:
        return _fallback_tokens(text)


def _check_texts(X) -> list[str]:
    if isinstance(X, str | bytes):
        raise TypeError(
            "X must be an iterable of MLIR texts, not a single "
            f"{type(X).__name__}; wrap one text in a list"
        )
    if not isinstance(X, Iterable):
        raise TypeError(
            f"X must be an iterable of MLIR texts (str), got {type(X).__name__}"
        )
    texts = list(X)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                "NeuralTextRegressor reads MLIR texts (str); "
                f"X[{i}] is a {type(text).__name__}"
            )
    return texts


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "NeuralTextRegressor needs torch, which is not installed; install the "
            "neural extra: pip install 'mlircost_classic[neural]'"
        ) from exc
    return torch


@contextlib.contextmanager
def _torch_session(n_threads: int | None, seed: int | None = None):
    """torch with ``n_threads`` threads (and a private seeded RNG), restored after."""
    torch = _import_torch()

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        torch.use_deterministic_algorithms(True)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            yield torch
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_num_threads(threads)


def _network(config: dict):
    """A fresh torch module for ``config`` (see ``NeuralTextRegressor._config``)."""
    import torch
    from torch import nn

    arch, d = config["arch"], config["d_model"]
    n_layers, dropout = config["n_layers"], config["dropout"]
    # The bidirectional LSTM concatenates two halves: d - 1 wide for an odd d.
    half = d // 2
    width = 2 * half if arch == "lstm" else d

    class Network(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(config["vocab_size"], d, padding_idx=0)
            if arch == "transformer":
                self.position = nn.Embedding(config["max_len"], d)
                layer = nn.TransformerEncoderLayer(
                    d,
                    config["n_heads"],
                    dim_feedforward=2 * d,
                    dropout=dropout,
                    activation="gelu",
                    batch_first=True,
                    norm_first=True,
                )
                self.encoder = nn.TransformerEncoder(
                    layer, n_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
                )
            elif arch == "lstm":
                # One (forward, backward) pair of LSTMs per layer.
                self.encoder = nn.ModuleList(
                    nn.ModuleList(
                        nn.LSTM(d if i == 0 else width, half, batch_first=True)
                        for _ in range(2)
                    )
                    for i in range(n_layers)
                )
            else:
                # Dilations 1, 2, 4, ...: the receptive field grows
                # exponentially with depth, to span a few ops per layer.
                self.encoder = nn.ModuleList(
                    nn.Conv1d(d, d, kernel_size=5, padding=2 * 2**i, dilation=2**i)
                    for i in range(n_layers)
                )
            self.drop = nn.Dropout(dropout)
            self.head = nn.Sequential(
                nn.Linear(2 * width + 1, d),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(d, config["n_targets"]),
            )

        def forward(self, ids, lengths, log_length):
            mask = ids != 0  # (batch, seq)
            h = self.embed(ids)
            if arch == "transformer":
                positions = torch.arange(ids.shape[1], device=ids.device)
                h = self.drop(h + self.position(positions))
                h = self.encoder(h, src_key_padding_mask=~mask)
            elif arch == "lstm":
                # A bidirectional LSTM on padded, not packed, sequences: on CPU
                # the backward pass over packed sequences of mixed lengths was
                # 10-20x slower. Padding comes after every token, so the forward
                # direction never reads it early; the backward direction reads
                # each sequence reversed within its own length (``flip`` is its
                # own inverse, and keeps padding at the end).
                t = torch.arange(ids.shape[1], device=ids.device)
                n = lengths.to(ids.device).unsqueeze(1)
                flip = torch.where(t < n, n - 1 - t, t).unsqueeze(-1)
                for reader, reverse_reader in self.encoder:
                    h = self.drop(h)  # on the input and between layers
                    ahead, _ = reader(h)
                    flipped = h.gather(1, flip.expand(-1, -1, h.shape[-1]))
                    back, _ = reverse_reader(flipped)
                    back = back.gather(1, flip.expand(-1, -1, half))
                    h = torch.cat([ahead, back], dim=-1)
            else:
                keep = mask.unsqueeze(1).to(h.dtype)
                h = self.drop(h).transpose(1, 2) * keep  # (batch, d, seq)
                for conv in self.encoder:
                    h = (h + nn.functional.gelu(conv(h))) * keep
                h = h.transpose(1, 2)
            m = mask.unsqueeze(-1).to(h.dtype)
            mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            peak = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
            pooled = torch.cat([mean, peak, log_length.unsqueeze(1)], dim=1)
            return self.head(self.drop(pooled))

    return Network()


class NeuralTextRegressor(TextInputMixin, RegressorMixin, BaseEstimator):
    """Neural baseline: one network reads MLIR tokens and predicts every target.

    Each text becomes a token sequence (:func:`tokenize`: op names, attribute
    values and keys, types with half-octave buckets of their dimensions and
    octave of their size), prefixed with ``<cls>``; the vocabulary is the
    tokens seen at least ``min_frequency`` times in the training texts, the
    others read as ``<unk>``. Sequences longer than ``max_len`` keep their head
    and tail around a ``<cut>`` token. The encoder is

    - ``"transformer"``: token and learned position embeddings, a pre-norm
      :class:`torch.nn.TransformerEncoder` with a padding mask;
    - ``"lstm"``: a bidirectional LSTM, each direction reading only the tokens
      (not the padding);
    - ``"cnn"``: a stack of residual 1-D convolutions (kernel 5, dilations
      1, 2, 4, ...) with padding masked out;

    followed by masked mean and max pooling over positions, the log of the
    untruncated sequence length (mean pooling alone forgets how long a program
    is), and an MLP head with one output per target.

    The network is multi-task: targets are standardized (after ``log1p`` for
    skewed non-negative ones, by the rule of
    :class:`~mlircost_classic.models.CostModel`), the loss is the mean squared
    error over the measured entries only (NaN marks a missing target), and the
    prediction is returned in the original units. Training uses AdamW on
    minibatches of similar lengths and stops when the loss on a random
    ``validation_fraction`` of the training rows has not improved for
    ``patience`` epochs, restoring the best weights.

    Parameters
    ----------
    arch : {"transformer", "lstm", "cnn"}, default="transformer"
        Sequence encoder.
    max_len : int, default=512
        Most tokens read per text, ``<cls>`` included (at least 8).
    d_model : int, default=64
        Width of the embeddings, the encoder and the head.
    n_layers : int, default=2
        Encoder layers (transformer layers, LSTM layers or convolutions).
    n_heads : int, default=4
        Attention heads of the transformer; must divide ``d_model``.
    dropout : float, default=0.1
        Dropout rate.
    min_frequency : int, default=2
        Tokens seen fewer times in the training texts read as ``<unk>``.
    max_epochs : int, default=100
        Most passes over the training rows.
    batch_size : int, default=32
        Texts per minibatch.
    learning_rate : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-2
        AdamW weight decay.
    validation_fraction : float, default=0.15
        Share of the training rows held out for early stopping; 0 trains for
        ``max_epochs`` (or ``max_seconds``) and keeps the last weights.
    patience : int, default=10
        Epochs without a better validation loss before stopping.
    max_seconds : float or None, default=None
        Wall-clock budget of the training loop; training stops after the
        minibatch that exceeds it. None means no limit.
    log_target : "auto" or bool, default="auto"
        Standardize ``log1p(y)``: ``"auto"`` for non-negative targets with a
        sample skewness above 1, True for every target, False for none.
    n_threads : int or None, default=None
        torch CPU threads during ``fit`` and ``predict`` (restored after);
        None leaves torch's setting (one thread per core). On a busy machine
        prefer 1: these networks are small, and threads waiting on each other
        made an LSTM epoch over ten times slower with 2 threads than with 1 on
        two loaded cores.
    random_state : int, RandomState or None, default=None
        Seeds the validation split, the minibatches, the weights and dropout.
        Fits with the same integer are identical, unless ``max_seconds`` cuts
        training short (where it stops depends on the machine's speed).
    verbose : bool, default=False
        Print the losses of each epoch.

    Attributes
    ----------
    target_names_ : list of str
        Target names, in column order.
    log_targets_ : list of bool
        Whether each target is standardized on the log scale.
    vocabulary_ : dict of str -> int
        Token -> embedding row; ``<pad>`` is 0 and ``<unk>`` 1.
    n_epochs_ : int
        Epochs run (the last one possibly cut short by ``max_seconds``).
    best_epoch_ : int
        Epoch (1-based) whose weights are kept.
    best_validation_loss_ : float
        Masked MSE of the standardized targets on the validation rows with the
        kept weights; NaN without a validation split.
    loss_curve_ : list of float
        Training loss of each epoch.
    validation_loss_curve_ : list of float
        Validation loss of each epoch (empty without a validation split).

    Examples
    --------
    >>> from mlircost_classic.models import NeuralTextRegressor
    >>> texts = [f'''func.func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{
    ...   %0 = arith.addf %a, %a : tensor<{n}xf32>
    ...   return %0 : tensor<{n}xf32>
    ... }}''' for n in (4, 8, 16, 32)]
    >>> model = NeuralTextRegressor("cnn", max_epochs=2, random_state=0)
    >>> model.fit(texts, [[4.0], [8.0], [16.0], [32.0]]).predict(texts[:1]).shape
    (1, 1)
    """

    #: The evaluation fits this model once for all targets (not once per target).
    _fits_all_targets = True

    _parameter_constraints: dict = {
        "arch": [StrOptions({"transformer", "lstm", "cnn"})],
        "max_len": [Interval(Integral, 8, None, closed="left")],
        "d_model": [Interval(Integral, 2, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "min_frequency": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "max_seconds": [Interval(Real, 0, None, closed="neither"), None],
        "log_target": [StrOptions({"auto"}), "boolean"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        arch="transformer",
        *,
        max_len=512,
        d_model=64,
        n_layers=2,
        n_heads=4,
        dropout=0.1,
        min_frequency=2,
        max_epochs=100,
        batch_size=32,
        learning_rate=1e-3,
        weight_decay=1e-2,
        validation_fraction=0.15,
        patience=10,
        max_seconds=None,
        log_target="auto",
        n_threads=None,
        random_state=None,
        verbose=False,
    ):
        self.arch = arch
        self.max_len = max_len
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.min_frequency = min_frequency
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_seconds = max_seconds
        self.log_target = log_target
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_network_cache", None)
        return state

    # -- sequences --------------------------------------------------------------
    def _encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Token ids (``<cls>`` first, truncated) and untruncated lengths."""
        return self._encode_tokens([tokenize(t) for t in texts])

    def _encode_tokens(self, token_lists) -> tuple[list[np.ndarray], np.ndarray]:
        vocabulary, unk = self.vocabulary_, self.vocabulary_[UNK]
        # The fitted length, not self.max_len: set_params after fit must not
        # outgrow the transformer's position table.
        budget = self._config["max_len"] - 1
        head = (budget - 1) // 2
        tail = budget - 1 - head
        sequences, lengths = [], []
        for tokens in token_lists:
            ids = [vocabulary.get(tok, unk) for tok in tokens]
            lengths.append(len(ids) + 1)
            if len(ids) > budget:
                ids = ids[:head] + [vocabulary[CUT]] + ids[len(ids) - tail :]
            sequences.append(np.array([vocabulary[CLS], *ids], dtype=np.int64))
        return sequences, np.log(np.array(lengths, dtype=np.float32))

    def _batch(self, torch, sequences, log_lengths, rows):
        lengths = [len(sequences[i]) for i in rows]
        ids = np.zeros((len(rows), max(lengths)), dtype=np.int64)
        for k, i in enumerate(rows):
            ids[k, : lengths[k]] = sequences[i]
        return (
            torch.from_numpy(ids),
            torch.tensor(lengths, dtype=torch.int64),
            torch.from_numpy(log_lengths[rows]),
        )

    def _batches(self, lengths: np.ndarray, rows: np.ndarray, rng) -> list:
        """Minibatches of similar lengths (less padding), in random order."""
        jitter = rng.uniform(0.8, 1.25, size=len(rows))
        ordered = rows[np.argsort(lengths[rows] * jitter, kind="stable")]
        size = self.batch_size
        batches = [ordered[i : i + size] for i in range(0, len(ordered), size)]
        return [batches[k] for k in rng.permutation(len(batches))]

    # -- targets ----------------------------------------------------------------
    def _destandardize(self, Z: np.ndarray) -> np.ndarray:
        Y = Z * self._scale + self._center
        for j, log in enumerate(self.log_targets_):
            if log:
                # Clipped so that a wild prediction stays finite.
                Y[:, j] = np.expm1(np.minimum(Y[:, j], 700.0))
        Y[:, ~self._measured] = np.nan
        return Y

    # -- fit ----------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, target_names=None):
        """Tokenize the texts, fit the vocabulary and train the network.

        Parameters
        ----------
        X : iterable of str
            MLIR texts.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measured costs; NaN where a text lacks a target. Missing entries
            are left out of the loss.
        target_names : list of str, optional
            One name per target column (default: the DataFrame's columns, else
            ``target0``, ``target1``, ...).

        Returns
        -------
        self
        """
        _import_torch()  # fail before tokenizing when torch is missing
        texts = _check_texts(X)
        Y, names, ndim = check_targets(y, target_names)
        if len(texts) != Y.shape[0]:
            raise ValueError(f"X has {len(texts)} texts but y has {Y.shape[0]} rows")
        if not texts:
            raise ValueError("fit needs at least one text")
        if self.arch == "transformer" and self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}"
            )
        if self.arch == "lstm" and self.d_model < 2:
            raise ValueError("arch='lstm' needs d_model >= 2")

        self.target_names_ = names
        self._y_ndim = ndim
        self.log_targets_ = [
            bool(flag) for flag in CostModel(log_target=self.log_target)._log_flags(Y)
        ]
        self._measured = ~np.isnan(Y).all(axis=0)
        for name, measured in zip(names, self._measured, strict=True):
            if not measured:
                warnings.warn(
                    f"target {name!r} has no measured row; its predictions are NaN",
                    UserWarning,
                    stacklevel=3,  # past sklearn's _fit_context wrapper
                )

        rng = check_random_state(self.random_state)
        n = len(texts)
        rows = rng.permutation(n)
        n_val = int(round(self.validation_fraction * n))
        validation, train = np.sort(rows[:n_val]), np.sort(rows[n_val:])
        if n_val and (train.size == 0 or np.isnan(Y[validation]).all()):
            validation, train = validation[:0], np.arange(n)

        token_lists = [tokenize(t) for t in texts]
        counts = Counter(tok for i in train for tok in token_lists[i])
        kept = sorted(
            (tok for tok, c in counts.items() if c >= self.min_frequency),
            key=lambda tok: (-counts[tok], tok),
        )
        self.vocabulary_ = {tok: i for i, tok in enumerate([*_SPECIALS, *kept])}
        self._config = {
            "arch": self.arch,
            "vocab_size": len(self.vocabulary_),
            "max_len": self.max_len,
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "dropout": float(self.dropout),
            "n_targets": Y.shape[1],
        }
        sequences, log_lengths = self._encode_tokens(token_lists)

        log = np.array(self.log_targets_, dtype=bool)
        Z = Y.copy()
        Z[:, log] = np.log1p(Y[:, log])
        self._center, self._scale = _location_scale(Z, train)
        Z = (Z - self._center) / self._scale

        seed = int(rng.randint(np.iinfo(np.int32).max))
        with _torch_session(self.n_threads, seed) as torch:
            self._train(torch, sequences, log_lengths, Z, train, validation, rng)
        return self

    def _train(self, torch, sequences, log_lengths, Z, train, validation, rng):
        network = _network(self._config)
        optimizer = torch.optim.AdamW(
            network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        targets = torch.from_numpy(np.nan_to_num(Z, nan=0.0).astype(np.float32))
        measured = torch.from_numpy(~np.isnan(Z))
        lengths = np.array([len(s) for s in sequences])
        by_length = validation[np.argsort(lengths[validation], kind="stable")]

        def loss_of(rows):
            ids, lens, log_len = self._batch(torch, sequences, log_lengths, rows)
            out = network(ids, lens, log_len)
            mask = measured[rows]
            err = (out - targets[rows]).square() * mask
            return err.sum(), mask.sum()

        def validation_loss():
            network.eval()
            total, count = 0.0, 0
            with torch.no_grad():
                for start in range(0, by_length.size, self.batch_size):
                    batch = by_length[start : start + self.batch_size]
                    s, c = loss_of(batch)
                    total, count = total + float(s.detach()), count + int(c)
            return total / max(count, 1)

        start = time.perf_counter()
        best_state, best_loss, best_epoch, waited = None, math.inf, 0, 0
        self.loss_curve_, self.validation_loss_curve_ = [], []
        out_of_time = False
        epoch = 0
        for epoch in range(1, self.max_epochs + 1):
            network.train()
            total, count = 0.0, 0
            for batch in self._batches(lengths, train, rng):
                s, c = loss_of(batch)
                if int(c) == 0:
                    continue
                optimizer.zero_grad()
                (s / c).backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                optimizer.step()
                total, count = total + float(s.detach()), count + int(c)
                if (
                    self.max_seconds is not None
                    and time.perf_counter() - start > self.max_seconds
                ):
                    out_of_time = True
                    break
            self.loss_curve_.append(total / max(count, 1))
            if validation.size:
                loss = validation_loss()
                self.validation_loss_curve_.append(loss)
                if loss < best_loss:
                    best_loss, best_epoch, waited = loss, epoch, 0
                    best_state = _numpy_state(network)
                else:
                    waited += 1
            else:
                best_epoch = epoch
            if self.verbose:
                shown = (
                    f", validation {self.validation_loss_curve_[-1]:.4f}"
                    if validation.size
                    else ""
                )
                print(f"epoch {epoch}: train {self.loss_curve_[-1]:.4f}{shown}")
            if out_of_time or waited >= self.patience:
                break
        self.n_epochs_ = epoch
        self.best_epoch_ = best_epoch
        self.best_validation_loss_ = float(best_loss) if validation.size else math.nan
        self._state = best_state if best_state is not None else _numpy_state(network)
        self._network_cache = None

    # -- predict ------------------------------------------------------------------
    def _fitted_network(self, torch):
        network = getattr(self, "_network_cache", None)
        if network is None:
            network = _network(self._config)
            network.load_state_dict(
                {k: torch.from_numpy(v) for k, v in self._state.items()}
            )
            network.eval()
            self._network_cache = network
        return network

    def predict(self, X) -> np.ndarray:
        """Predict every target.

        Parameters
        ----------
        X : iterable of str
            MLIR texts.

        Returns
        -------
        ndarray of shape (n_samples, n_targets), or (n_samples,) when fitted on 1-D y
            Columns in the order of ``target_names_``, in the targets' units;
            NaN for a target that had no measured row in fit.
        """
        check_is_fitted(self, "_state")
        texts = _check_texts(X)
        sequences, log_lengths = self._encode(texts)
        n_targets = len(self.target_names_)
        out = np.zeros((len(texts), n_targets))
        if texts:
            lengths = np.array([len(s) for s in sequences])
            order = np.argsort(lengths, kind="stable")
            # Larger chunks than in training, except for attention, whose
            # memory grows with the square of the length (4x made it slower).
            chunk = self.batch_size * (
                1 if self._config["arch"] == "transformer" else 4
            )
            with _torch_session(self.n_threads) as torch, torch.no_grad():
                network = self._fitted_network(torch)
                for start in range(0, len(order), chunk):
                    rows = order[start : start + chunk]
                    batch = self._batch(torch, sequences, log_lengths, rows)
                    out[rows] = network(*batch).numpy()
        out = self._destandardize(out)
        return out[:, 0] if self._y_ndim == 1 else out


def _location_scale(Z: np.ndarray, train: np.ndarray):
    """Mean and standard deviation of each column on the training rows.

    A column measured only on validation rows uses those; one never measured
    gets (0, 1); a constant one a scale of 1.
    """
    center, scale = np.zeros(Z.shape[1]), np.ones(Z.shape[1])
    for j in range(Z.shape[1]):
        z = Z[train, j]
        z = z[~np.isnan(z)]
        if z.size == 0:
            z = Z[~np.isnan(Z[:, j]), j]
        if z.size:
            center[j] = z.mean()
            if z.std() > 0:
                scale[j] = z.std()
    return center, scale


def _numpy_state(network) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in network.state_dict().items()}
