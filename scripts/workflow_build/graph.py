"""A UI graph: nodes, links and their bookkeeping, and the edits the build makes (connect, drop, place)."""

from __future__ import annotations

import math

TITLE_HEIGHT, GAP = 30, 40  # a node's title bar above its ``pos``; the margin kept around a placed node


class Graph:
    """A UI-format workflow (``nodes`` + ``links`` lists) with the edits this script makes."""

    def __init__(self, data: dict) -> None:
        self.data = data
        self.nodes: dict[int, dict] = {n["id"]: n for n in data["nodes"]}
        self.links: dict[int, list] = {link[0]: link for link in data["links"]}

    def node(self, node_id: int) -> dict:
        if node_id not in self.nodes:
            raise KeyError(f"node {node_id} is not in the template (did the template change?)")
        return self.nodes[node_id]

    def new_node_id(self) -> int:
        self.data["last_node_id"] = max([self.data.get("last_node_id", 0), *self.nodes]) + 1
        return self.data["last_node_id"]

    def connect(self, origin: int, origin_slot: int, target: int, target_slot: int, kind: str) -> int:
        link_id = self.data["last_link_id"] = max([self.data.get("last_link_id", 0), *self.links]) + 1
        self.links[link_id] = [link_id, origin, origin_slot, target, target_slot, kind]
        output = self.nodes[origin]["outputs"][origin_slot]
        output["links"] = [*(output.get("links") or []), link_id]
        self.nodes[target]["inputs"][target_slot]["link"] = link_id
        return link_id

    def unlink(self, link_id: int) -> list:
        link = self.links.pop(link_id)
        _, origin, origin_slot, target, target_slot, _ = link
        if origin in self.nodes:
            output = self.nodes[origin]["outputs"][origin_slot]
            output["links"] = [i for i in output.get("links") or [] if i != link_id]
        if target in self.nodes:
            self.nodes[target]["inputs"][target_slot]["link"] = None
        return link

    def input_slot(self, node: dict, name: str) -> int:
        return next(i for i, slot in enumerate(node["inputs"]) if slot["name"] == name)

    def drop(self, node_id: int) -> None:
        """Remove a node; the consumers of an output of the same type as one of its linked inputs (a
        pass-through such as a LoRA) are reconnected to that input's source."""
        node = self.node(node_id)
        sources = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                link = self.unlink(slot["link"])
                sources.setdefault(link[5], (link[1], link[2]))
        for output in node.get("outputs", []):
            for link_id in list(output.get("links") or []):
                _, _, _, target, target_slot, kind = self.unlink(link_id)
                if kind in sources and target in self.nodes:
                    self.connect(*sources[kind], target, target_slot, kind)
        del self.nodes[node_id]

    def bounds(self, node: dict) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of a node, its title bar included."""
        (x, y), (w, h) = node["pos"], node["size"]
        return x, y - TITLE_HEIGHT, x + w, y + h

    def free_spot(self, size: tuple[float, float], near: tuple[float, float]) -> list[float]:
        """The grid point nearest ``near`` where a node of ``size`` overlaps no node or group (with a margin)."""
        boxes = [self.bounds(n) for n in self.nodes.values()] + [
            (x, y, x + w, y + h) for x, y, w, h in (g["bounding"] for g in self.groups())]
        w, h = size
        candidates = sorted(((near[0] + dx * 20, near[1] + dy * 20) for dx in range(-60, 61) for dy in range(-60, 61)),
                            key=lambda p: (math.dist(p, near), p))
        for x, y in candidates:
            box = (x - GAP / 2, y - TITLE_HEIGHT - GAP / 2, x + w + GAP / 2, y + h + GAP / 2)
            if all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3] for b in boxes):
                return [x, y]
        raise RuntimeError("no free spot for a node")

    def finish(self) -> dict:
        """The graph as a UI workflow: nodes in id order with execution ``order``, links, positions shifted so
        the graph starts at (0, 0)."""
        x0 = min([self.bounds(n)[0] for n in self.nodes.values()] + [g["bounding"][0] for g in self.groups()])
        y0 = min([self.bounds(n)[1] for n in self.nodes.values()] + [g["bounding"][1] for g in self.groups()])
        for node in self.nodes.values():
            node["pos"] = [node["pos"][0] - x0, node["pos"][1] - y0 + TITLE_HEIGHT]
        for group in self.groups():
            group["bounding"] = [group["bounding"][0] - x0, group["bounding"][1] - y0 + TITLE_HEIGHT,
                                 *group["bounding"][2:]]
        for order, node_id in enumerate(self.execution_order()):
            self.nodes[node_id]["order"] = order
        self.data["nodes"] = [self.nodes[i] for i in sorted(self.nodes)]
        self.data["links"] = [self.links[i] for i in sorted(self.links)]
        return self.data

    def groups(self) -> list[dict]:
        return self.data.get("groups", [])

    def execution_order(self) -> list[int]:
        """Node ids in a topological order of the links (ties by id)."""
        pending = {i: {self.links[s["link"]][1] for s in n.get("inputs", []) if s.get("link") is not None}
                   for i, n in self.nodes.items()}
        order: list[int] = []
        while pending:
            ready = sorted(i for i, deps in pending.items() if not deps - set(order))
            if not ready:
                raise ValueError("the graph has a cycle")
            order.extend(ready)
            for i in ready:
                del pending[i]
        return order
