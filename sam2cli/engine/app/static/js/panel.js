// The side panel (objects, proposals) and the timeline under the frame.
import { seedColor } from "./view.js";

function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e[k] = v;
  }
  for (const k of kids) e.append(k);
  return e;
}

export function renderObjects(root, info, selected, act) {
  root.replaceChildren();
  const classes = el("datalist", { id: "class-names" });
  for (const c of info.classes) classes.append(el("option", { value: c }));
  root.append(classes);
  if (!info.objects.length) root.append(el("p", { class: "hint" }, "No objects yet: press N, or click the frame."));
  info.objects.forEach((o, i) => {
    const swatch = el("span", { class: "swatch", title: o.color });
    swatch.style.background = o.color;
    const name = el("input", { class: "name", value: o.name, title: "name", onchange: (e) => act.rename(o.id, e.target.value) });
    const cls = el("input", { class: "cls", value: o.class, title: "class name (YOLO/COCO category)" });
    cls.setAttribute("list", "class-names");
    cls.addEventListener("change", (e) => act.setClass(o.id, e.target.value));
    const meta = el("span", { class: "meta" }, `${i < 9 ? `[${i + 1}] ` : ""}${o.frames.length} prompted${info.mode === "video" && o.dirty && o.frames.length ? ", needs Track" : ""}`);
    const del = el("button", { class: "del", title: "delete this object", onclick: (e) => { e.stopPropagation(); act.remove(o.id); } }, "\u2715");
    const row = el("div", { class: "object" + (o.id === selected ? " selected" : ""), onclick: () => act.select(o.id) },
      swatch, el("div", { class: "fields" }, name, cls, meta), del);
    row.dataset.id = o.id;
    root.append(row);
  });
}

export function renderSeeds(root, seeds, keep, act) {
  root.replaceChildren();
  root.classList.toggle("hidden", !seeds);
  if (!seeds) return;
  root.append(el("p", {}, `${seeds.items.length} proposal(s) on frame ${seeds.frame + 1}; ${keep.size} chosen. Click a proposal to choose it.`));
  const list = el("div", { class: "seed-list" });
  for (const s of seeds.items) {
    const [r, g, b] = seedColor(s.id);
    const chip = el("span", { class: "chip" + (keep.has(s.id) ? " kept" : ""), title: `predicted IoU ${s.score}` }, String(s.id));
    chip.style.borderColor = `rgb(${r},${g},${b})`;
    list.append(chip);
  }
  root.append(list,
    el("button", { id: "seeds-keep", onclick: () => act.keep(false) }, "Keep chosen"),
    el("button", { id: "seeds-keep-all", onclick: () => act.keep(true) }, "Keep all"),
    el("button", { id: "seeds-drop", onclick: () => act.drop() }, "Drop (Esc)"));
}

export class Timeline {
  constructor(canvas, seek) {
    this.c = canvas; this.seek = seek; this.info = null; this.frame = 0;
    new ResizeObserver(() => this.draw()).observe(canvas);
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      return Math.floor(((e.clientX - r.left) / r.width) * this.info.num_frames);
    };
    let down = false;
    canvas.addEventListener("mousedown", (e) => { down = true; this.seek(at(e)); });
    window.addEventListener("mousemove", (e) => { if (down) this.seek(at(e)); });
    window.addEventListener("mouseup", () => { down = false; });
  }

  set(info, frame) { this.info = info; this.frame = frame; this.draw(); }

  draw() {
    if (!this.info) return;
    const c = this.c, r = c.getBoundingClientRect();
    const W = Math.max(1, Math.floor(r.width)), H = Math.max(1, Math.floor(r.height));
    if (c.width !== W || c.height !== H) { c.width = W; c.height = H; }  // setting a size reallocates, even the same
    const g = c.getContext("2d"), n = this.info.num_frames, w = c.width / n;
    g.fillStyle = "#23262b"; g.fillRect(0, 0, c.width, c.height);
    const byFrame = {};
    for (const o of this.info.objects) for (const f of o.frames) (byFrame[f] = byFrame[f] || []).push(o.color);
    for (const [f, cols] of Object.entries(byFrame)) {
      cols.forEach((col, k) => {
        g.fillStyle = col;
        g.fillRect(Number(f) * w, (k * c.height) / cols.length, Math.max(w, 3), c.height / cols.length);
      });
    }
    g.fillStyle = "#ffffff";
    g.fillRect(this.frame * w + w / 2 - 1, 0, 2, c.height);
  }
}
