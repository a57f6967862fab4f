"""Plugin ConfigMaps rendered from the `plugins` value (k8up-rs addition)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import helm_python as helm
import pytest

from chart_helpers import RELEASE_NAMESPACE, find, find_all, render

# A syntactically minimal component: the `\0asm` magic, then a component-model version/layer word, then
# arbitrary bytes (including ones that are not valid UTF-8, to catch any text handling of the content).
COMPONENT = b"\x00asm\x0d\x00\x01\x00" + bytes(range(256))


def plugin_configmaps(objects):
    return [o for o in find_all(objects, "ConfigMap") if "k8up.io/plugin" in o["metadata"].get("labels", {})]


def test_a_base64_plugin_becomes_a_labelled_configmap_with_its_digest():
    encoded = base64.b64encode(COMPONENT).decode()
    cm = find(render({"plugins": [{"name": "fast-backup", "base64": encoded}]}), "ConfigMap", "fast-backup")
    assert cm["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert cm["metadata"]["labels"]["k8up.io/plugin"] == "fast-backup"
    assert base64.b64decode(cm["binaryData"]["plugin.wasm"]) == COMPONENT
    assert cm["metadata"]["annotations"]["k8up.io/plugin-sha256"] == hashlib.sha256(COMPONENT).hexdigest()
    assert "data" not in cm


def test_wrapped_base64_is_accepted():
    encoded = base64.encodebytes(COMPONENT).decode()  # newline every 76 characters, as `base64` prints it
    assert "\n" in encoded.strip()
    cm = find(render({"plugins": [{"name": "p", "base64": encoded}]}), "ConfigMap", "p")
    assert base64.b64decode(cm["binaryData"]["plugin.wasm"]) == COMPONENT


def test_a_plugin_file_inside_the_chart_is_embedded_byte_for_byte(chart_copy: Path):
    (chart_copy / "plugins").mkdir()
    (chart_copy / "plugins" / "planner.wasm").write_bytes(COMPONENT)
    objects = render({"plugins": [{"name": "planner", "file": "plugins/planner.wasm"}]}, chart_dir=chart_copy)
    cm = find(objects, "ConfigMap", "planner")
    assert base64.b64decode(cm["binaryData"]["plugin.wasm"]) == COMPONENT
    assert cm["metadata"]["annotations"]["k8up.io/plugin-sha256"] == hashlib.sha256(COMPONENT).hexdigest()


def test_several_plugins_go_to_the_plugin_namespace():
    encoded = base64.b64encode(COMPONENT).decode()
    objects = render(
        {
            "k8up": {"pluginNamespace": "plugins"},
            "plugins": [{"name": "a", "base64": encoded}, {"name": "b", "base64": encoded}],
        }
    )
    cms = plugin_configmaps(objects)
    assert sorted(c["metadata"]["name"] for c in cms) == ["a", "b"]
    assert {c["metadata"]["namespace"] for c in cms} == {"plugins"}


def test_no_plugins_render_no_plugin_configmaps():
    assert plugin_configmaps(render()) == []


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        ({"base64": "AGFzbQ=="}, "plugins\\[0\\].name is required"),
        ({"name": "Not_A_Label", "base64": "AGFzbQ=="}, "must be a DNS label"),
        ({"name": "p" * 64, "base64": "AGFzbQ=="}, "must be a DNS label"),
        ({"name": "p"}, "give base64 or file"),
        ({"name": "p", "base64": "AGFzbQ==", "file": "x.wasm"}, "not both"),
        ({"name": "p", "base64": "not base64!"}, "not valid standard base64"),
        ({"name": "p", "base64": base64.b64encode(b"#!/bin/sh\necho hi\n").decode()}, "not a WebAssembly component"),
        ({"name": "p", "file": "plugins/missing.wasm"}, "file \"plugins/missing.wasm\" is missing"),
    ],
)
def test_an_invalid_plugin_entry_fails_the_render_with_a_reason(plugin, message):
    with pytest.raises(helm.HelmRenderError, match=message):
        render({"plugins": [plugin]})


def test_a_plugin_listed_twice_fails_the_render():
    entry = {"name": "p", "base64": "AGFzbQ=="}
    with pytest.raises(helm.HelmRenderError, match="listed twice"):
        render({"plugins": [entry, entry]})
