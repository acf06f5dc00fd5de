"""Keras layer names -> C++ identifiers, before hls4ml sees them.

Keras 2.15 accepts layer names such as ``a//b``, ``../../x``, ``9lives`` or ``a-b.c``; hls4ml 1.3.0
pastes a layer's name into the generated C++ (the model input's variable, ``<name>_accum_t``
typedefs, comments), so such a model does not compile. ``LayerNames`` maps every layer name of a
model to an identifier: a name that already is a plain one (``[A-Za-z][A-Za-z0-9]*`` words joined
by single underscores, no C++ keyword, no macro-style capitals, nothing hls4ml generates itself
such as ``w2``, ``layer3_out`` or ``*_t``) stays as it is; any other becomes its sanitized form
plus the first 6 hex digits of the SHA-256 of the original name (``a//b`` -> ``a_b_<hash>``),
longer if that is taken. The map depends only on the names, so it is stable from run to run, and
no two layers share an identifier, nor with a layer hls4ml inserts (``<name>_linear``).

``RenamedModel`` shows hls4ml a model whose layers carry those identifiers (its ``to_json`` and
``get_layer``, all hls4ml's Keras reader uses), and gives each layer's weights by their names
relative to the layer (``/kernel:0``): hls4ml finds a weight by substring, so in a layer named
``bias_head`` it would otherwise take ``bias_head/kernel:0`` for the bias. ``hls_project.convert``
keeps the originals in the hls4ml config (``KerasLayerNames``: written to ``hls4ml_config.yml``,
read by ``keras_name``) and in a comment block of ``firmware/<project>.cpp``
(``hls_project.reproducible``), escaped so that no name can end a comment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

HASH_DIGITS = 6
MAX_STEM = 40  # characters of the sanitized name kept before the hash
PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*\Z")
# identifiers hls4ml and our templates generate (weights w2/b2/s2, variables layer2_out, types *_t,
# configs config2, the bridge's <input>_ap copies), the project and namespaces, macro-style names
GENERATED = re.compile(
    r"(?:layer\d+_out|[wbs]\d+|config\d+\w*|zero_bias\d*|\w*_t|\w*_ap|myproject\w*|nnet|std|hls|ap_\w*"
    r"|[A-Z][A-Z0-9_]*)\Z"
)
CPP_KEYWORDS = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
    compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype default
    delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline int long
    mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
    reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch template this
    thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while xor
    xor_eq main""".split()
)
NAMES_CONFIG_KEY = "KerasLayerNames"  # in the hls4ml config (and hls4ml_config.yml): {identifier: Keras name}


def is_plain(name: str) -> bool:
    """Whether ``name`` can be used as it is: a C++ identifier that nothing generated or reserved can clash with."""
    return bool(PLAIN.match(name)) and name not in CPP_KEYWORDS and not GENERATED.match(name)


def hashed_identifier(name: str, digits: int = HASH_DIGITS) -> str:
    """``name`` sanitized (runs of other characters -> ``_``) plus ``digits`` hex digits of its SHA-256,
    behind ``layer_`` if that is still not plain (a leading digit): ``a//b`` -> ``a_b_`` + 6 hex digits."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:MAX_STEM].rstrip("_") or "layer"
    identifier = f"{stem}_{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:digits]}"
    return identifier if is_plain(identifier) else f"layer_{identifier}"  # e.g. 9lives, myproject, LSTM


def cpp_comment(name: str) -> str:
    """``name`` as a JSON string safe inside a C++ ``//`` comment: ASCII only, no control character
    (newlines are escaped), no ``?`` (a trigraph ``??/`` would splice the next line in)."""
    return json.dumps(name, ensure_ascii=True).replace("?", "\\u003f")


@dataclass(frozen=True)
class LayerNames:
    """Every layer name of one model and its C++ identifier; ``identifiers`` in the model's layer order."""

    keras: tuple
    identifiers: tuple

    @classmethod
    def of(cls, names, reserved=()) -> LayerNames:
        """Identifiers for ``names`` (unique Keras layer names), none equal to one of ``reserved``."""
        names = [str(name) for name in names]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique in a model; repeated: {', '.join(map(repr, duplicates))}")
        taken = set(reserved)
        chosen = {name: name for name in names if is_plain(name) and name not in taken}
        taken.update(chosen.values())
        for name in names:
            if name in chosen:
                continue
            digits = HASH_DIGITS
            while (identifier := hashed_identifier(name, digits)) in taken:
                digits += 2  # two names sharing a sanitized form and a hash prefix: a longer hash
            chosen[name] = identifier
            taken.add(identifier)
        return cls(tuple(names), tuple(chosen[name] for name in names))

    @classmethod
    def for_model(cls, model) -> LayerNames:
        """Identifiers for every layer of ``model`` that also avoid the names of the layers hls4ml
        inserts (a dense layer's activation, ``<name>_<activation>``)."""
        names = cls.of(layer["config"]["name"] for layer in model_layers(json.loads(model.to_json())))
        identifiers = set(names.identifiers)
        if not any(other.startswith(f"{ident}_") for ident in identifiers for other in identifiers):
            return names  # no identifier extends another: nothing hls4ml inserts can equal one
        with names.in_errors():
            inserted = Counter(names.hls4ml_layer_names(model)) - Counter(names.identifiers)
        return cls.of(names.keras, reserved=inserted) if set(inserted) & identifiers else names

    def hls4ml_layer_names(self, model) -> list:
        """The names of the layers hls4ml's Keras parser makes of ``model`` renamed by these identifiers
        (its own layers and the activations it splits off)."""
        from hls4ml.converters.keras_v2_to_hls import KerasModelReader, parse_keras_model

        renamed = RenamedModel(model, self)
        layer_list, *_ = parse_keras_model(json.loads(renamed.to_json()), KerasModelReader(renamed))
        return [layer["name"] for layer in layer_list]

    @property
    def to_hls(self) -> dict:
        """``{Keras name: identifier}``."""
        return dict(zip(self.keras, self.identifiers, strict=True))

    @property
    def to_keras(self) -> dict:
        """``{identifier: Keras name}``."""
        return dict(zip(self.identifiers, self.keras, strict=True))

    @property
    def renamed(self) -> dict:
        """``{Keras name: identifier}`` of the layers whose identifier is not their name."""
        return {name: ident for name, ident in self.to_hls.items() if name != ident}

    @contextlib.contextmanager
    def in_errors(self):
        """A ``ValueError`` raised inside (by hls4ml or our handlers, which name layers by identifier) is
        raised again naming the layers by their Keras names."""
        try:
            yield
        except ValueError as err:
            text = str(err)
            for name, identifier in self.renamed.items():
                text = text.replace(f"'{identifier}'", repr(name))
            raise ValueError(text) from err


def model_layers(arch: dict) -> list:
    """The layer entries of a model's JSON (a Sequential model's include its ``InputLayer``)."""
    config = arch["config"]
    return config["layers"] if isinstance(config, dict) else config


class RenamedModel:
    """What hls4ml's Keras v2 converter reads of a model (``to_json``, ``get_layer``), with every layer
    under its identifier of ``names`` and its weights named relative to the layer."""

    def __init__(self, model, names: LayerNames):
        self.model, self.names = model, names

    def to_json(self) -> str:
        """The model's JSON with every layer name (definitions, inbound nodes, inputs and outputs) renamed."""
        arch = json.loads(self.model.to_json())
        to_hls = self.names.to_hls
        config = arch["config"]
        for layer in model_layers(arch):
            name = layer["config"]["name"]
            layer["config"]["name"] = to_hls[name]
            if "name" in layer:
                layer["name"] = to_hls[name]
            for node in layer.get("inbound_nodes", []):
                for inbound in node:
                    inbound[0] = to_hls[inbound[0]]
        for key in ("input_layers", "output_layers"):
            if isinstance(config, dict) and key in config:
                config[key] = [[to_hls[entry[0]], *entry[1:]] for entry in config[key]]
        return json.dumps(arch)

    def get_layer(self, identifier: str):
        return _RelativeWeights(self.model.get_layer(self.names.to_keras[identifier]))


@dataclass(frozen=True)
class _Weight:
    name: str
    value: np.ndarray

    def numpy(self) -> np.ndarray:
        return self.value


class _RelativeWeights:
    """A layer as hls4ml's reader sees it: ``weights`` named without the layer's name (``/kernel:0``)."""

    def __init__(self, layer):
        prefix = f"{layer.name}/"
        self.weights = [
            _Weight(weight.name[len(prefix) - 1 :] if weight.name.startswith(prefix) else weight.name, value)
            for weight, value in zip(layer.weights, layer.get_weights(), strict=True)
        ]

    def get_weights(self) -> list:
        return [weight.value for weight in self.weights]


def keras_name(hls_model, node_name: str) -> str:
    """The Keras name of the hls4ml layer ``node_name`` of a model converted by ``hls_project.convert``
    (a layer hls4ml inserted keeps its own name)."""
    return hls_model.config.get_config_value(NAMES_CONFIG_KEY, {}).get(node_name, node_name)
