"""A small kustomize renderer for k8s/, limited to the features this tree uses.

    python k8s/render.py k8s/overlays/prod      # the rendered manifests, like `kustomize build`

Why it exists: `make k8s-check` must run on a bare Debian machine, and no kustomize
binary installs there from the project's own package sources (Debian 12's
kubernetes-client is kubectl 1.20 with kustomize v2, which predates components; no
PyPI wheel ships kustomize). So this renders what k8s/ uses, and refuses anything
else rather than guess:

* `resources` (files and directories with a kustomization.yaml), `components`
  (kind: Component), `namespace`, `images` (name -> newName/newTag), and `patches`
  given by `path` as strategic-merge patches (maps merge; lists of maps with a `name`
  merge by name, the strategic-merge key of containers, env, volumes, ports and
  volumeMounts in the API; other lists are replaced).

Where a kubectl with kustomize v5 exists (`kubectl kustomize`), k8s/tests compares
this renderer's output with it object by object, so a divergence is a test failure,
not a silent difference.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "components", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume"}


class Unsupported(Exception):
    pass


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def build(directory: Path) -> list[dict]:
    """The objects of a kustomization (or component) directory, transformed."""
    kfile = directory / "kustomization.yaml"
    k = yaml.safe_load(kfile.read_text())
    extra = set(k) - SUPPORTED
    if extra:
        raise Unsupported(f"{kfile}: kustomize fields this renderer does not implement: {sorted(extra)}")
    objects: list[dict] = []
    for entry in k.get("resources", []):
        target = (directory / entry).resolve()
        objects += build(target) if target.is_dir() else load_docs(target)
    for entry in k.get("components", []):
        comp = (directory / entry).resolve()
        if yaml.safe_load((comp / "kustomization.yaml").read_text()).get("kind") != "Component":
            raise Unsupported(f"{comp} is listed as a component but is not kind: Component")
        objects = apply_component(objects, comp)
    for patch in k.get("patches", []):
        if set(patch) != {"path"}:
            raise Unsupported(f"{kfile}: only `patches: - path: ...` is implemented, got {patch}")
        for p in load_docs(directory / patch["path"]):
            apply_patch(objects, p, kfile)
    for image in k.get("images", []):
        set_image(objects, image)
    if "namespace" in k:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = k["namespace"]
    return objects


def apply_component(objects: list[dict], comp: Path) -> list[dict]:
    # A component adds its resources to the including kustomization and then patches
    # the combined set, which is what `build` does with the accumulated objects.
    k = yaml.safe_load((comp / "kustomization.yaml").read_text())
    extra = set(k) - SUPPORTED
    if extra:
        raise Unsupported(f"{comp}: fields this renderer does not implement: {sorted(extra)}")
    objects = objects + [d for entry in k.get("resources", []) for d in load_docs(comp / entry)]
    for patch in k.get("patches", []):
        for p in load_docs(comp / patch["path"]):
            apply_patch(objects, p, comp)
    return objects


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def apply_patch(objects: list[dict], patch: dict, where: Path) -> None:
    matches = [
        o
        for o in objects
        if o["kind"] == patch["kind"]
        and o["metadata"]["name"] == patch["metadata"]["name"]
        and _group(o["apiVersion"]) == _group(patch["apiVersion"])
    ]
    if len(matches) != 1:
        raise Unsupported(
            f"{where}: patch for {patch['kind']}/{patch['metadata']['name']} matches {len(matches)} objects"
        )
    merged = merge(matches[0], patch)
    matches[0].clear()
    matches[0].update(merged)


def merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        if any(str(k).startswith("$") for k in patch):
            raise Unsupported(f"strategic-merge directives are not implemented: {list(patch)}")
        out = copy.deepcopy(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        out = copy.deepcopy(base)
        for item in patch:
            i = next((i for i, b in enumerate(out) if b["name"] == item["name"]), None)
            if i is None:
                out.append(copy.deepcopy(item))
            else:
                out[i] = merge(out[i], item)
        return out
    return copy.deepcopy(patch)


def _named(items: list) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def pod_specs(obj: dict):
    spec = obj.get("spec", {})
    if "template" in spec:
        yield spec["template"]["spec"]
    if "jobTemplate" in spec:
        yield spec["jobTemplate"]["spec"]["template"]["spec"]


def set_image(objects: list[dict], image: dict) -> None:
    for obj in objects:
        for pod in pod_specs(obj):
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                name = c["image"].split("@")[0].rsplit(":", 1)[0] if ":" in c["image"].split("/")[-1] else c["image"]
                if name != image["name"]:
                    continue
                new = image.get("newName", name)
                c["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new


def render(directory: Path) -> str:
    return yaml.safe_dump_all(build(directory), sort_keys=False)


if __name__ == "__main__":
    sys.stdout.write(render(Path(sys.argv[1])))
