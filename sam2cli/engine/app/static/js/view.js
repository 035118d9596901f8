// The frame on a canvas: the image, the masks (filled, outlined), the prompts, proposals; zoom
// with the wheel, pan with the middle button or Space + drag, fit with 0.
// Left click: positive point; right click or Shift + click: negative; drag: box.
import { paintRle } from "./rle.js";

const DRAG_PX = 5;

function rgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export function seedColor(i) {  // hues a golden ratio apart, as the server colours objects
  const h = (i * 0.618033988749895 + 0.05) % 1, s = 0.7, f = (n) => {
    const k = (n + h * 6) % 6;
    return Math.round(255 * (1 - s * Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return [f(5), f(3), f(1)];
}

export class View {
  constructor(canvas, handlers) {
    this.c = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });  // opaque: it is filled first; cheaper to composite
    this.h = handlers;             // {point(x, y, label), box([x1, y1, x2, y2]), seed(x, y)}
    this.img = null; this.w = 0; this.hgt = 0;
    this.overlay = document.createElement("canvas");
    this.seedLayer = null;
    this.prompts = {}; this.selected = null; this.colors = {};
    this.scale = 1; this.ox = 0; this.oy = 0; this.fitted = false;
    this.drag = null; this.space = false; this.seedMode = false;
    this.resize = this.resize.bind(this);
    new ResizeObserver(this.resize).observe(canvas.parentElement);
    canvas.addEventListener("mousedown", (e) => this.down(e));
    window.addEventListener("mousemove", (e) => this.move(e));
    window.addEventListener("mouseup", (e) => this.up(e));
    canvas.addEventListener("contextmenu", (e) => { e.preventDefault(); });
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    window.addEventListener("keydown", (e) => { if (e.code === "Space" && !isTyping(e)) { this.space = true; e.preventDefault(); } });
    window.addEventListener("keyup", (e) => { if (e.code === "Space") this.space = false; });
  }

  resize() {
    const r = this.c.parentElement.getBoundingClientRect();
    this.c.width = Math.max(1, Math.floor(r.width)); this.c.height = Math.max(1, Math.floor(r.height));
    if (!this.fitted) this.fit(); else this.draw();
  }

  fit() {
    if (!this.w) return;
    this.scale = Math.min(this.c.width / this.w, this.c.height / this.hgt);
    this.ox = (this.c.width - this.w * this.scale) / 2; this.oy = (this.c.height - this.hgt * this.scale) / 2;
    this.fitted = true; this.draw();
  }

  setImage(img, w, h) {
    const same = this.w === w && this.hgt === h;
    this.img = img; this.w = w; this.hgt = h;
    if (!same) { this.fitted = false; this.fit(); } else this.draw();
  }

  // masks: [{obj_id, rle}], colors: {id: "#rrggbb"}
  setMasks(masks, colors, selected) {
    this.colors = colors; this.selected = selected;
    this.overlay = this.paint(masks.map((m) => ({ rle: m.rle, color: colors[m.obj_id] ? rgb(colors[m.obj_id]) : [255, 255, 255], strong: m.obj_id === selected })));
    this.draw();
  }

  setSeeds(seeds, keep) {
    this.seedMode = !!seeds;
    this.seedLayer = seeds ? this.paint(seeds.map((s) => ({ rle: s.rle, color: seedColor(s.id), strong: keep.has(s.id) }))) : null;
    this.draw();
  }

  // One RGBA layer at image resolution: translucent fill, opaque outline.
  paint(items) {
    const w = this.w, h = this.hgt, cv = document.createElement("canvas");
    cv.width = w; cv.height = h;
    if (!w || !items.length) return cv;
    const label = new Uint8Array(w * h);
    items.forEach((it, k) => paintRle(it.rle, label, k + 1));
    const data = new ImageData(w, h), px = data.data;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x, v = label[i];
        if (!v) continue;
        const it = items[v - 1];
        const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 || label[i - 1] !== v || label[i + 1] !== v ||
          label[i - w] !== v || label[i + w] !== v;
        const o = i * 4;
        px[o] = it.color[0]; px[o + 1] = it.color[1]; px[o + 2] = it.color[2];
        px[o + 3] = edge ? 255 : (it.strong ? 150 : 105);
      }
    }
    cv.getContext("2d").putImageData(data, 0, 0);
    return cv;
  }

  setPrompts(prompts) { this.prompts = prompts || {}; this.draw(); }

  // Run fn (several set* calls) and draw once at the end: a frame shown is one redraw, not five.
  batch(fn) {
    this.holds = (this.holds || 0) + 1;
    try { fn(); } finally { this.holds--; }
    if (!this.holds && this.held) this.draw();
  }

  draw() {
    if (this.holds) { this.held = true; return; }
    this.held = false;
    const g = this.ctx;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = "#15171a"; g.fillRect(0, 0, this.c.width, this.c.height);
    if (!this.img) return;
    g.setTransform(this.scale, 0, 0, this.scale, this.ox, this.oy);
    g.imageSmoothingEnabled = this.scale < 2;
    g.drawImage(this.img, 0, 0, this.w, this.hgt);
    g.imageSmoothingEnabled = false;
    if (this.seedLayer) g.drawImage(this.seedLayer, 0, 0);
    else g.drawImage(this.overlay, 0, 0);
    const r = 5 / this.scale;
    for (const [id, p] of Object.entries(this.prompts)) {
      const mine = Number(id) === this.selected;
      const col = this.colors[id] || "#ffffff";
      if (p.box) {
        g.lineWidth = 2 / this.scale; g.strokeStyle = col; g.setLineDash(mine ? [] : [4 / this.scale, 4 / this.scale]);
        g.strokeRect(p.box[0], p.box[1], p.box[2] - p.box[0], p.box[3] - p.box[1]);
        g.setLineDash([]);
      }
      p.points.forEach(([x, y], k) => {
        g.beginPath(); g.arc(x, y, mine ? r : r * 0.7, 0, 2 * Math.PI);
        g.fillStyle = p.labels[k] ? "#2ecc71" : "#e74c3c"; g.fill();
        g.lineWidth = 1.5 / this.scale; g.strokeStyle = mine ? "#ffffff" : col; g.stroke();
      });
    }
    if (this.drag && this.drag.box) {
      const [a, b] = [this.drag.start, this.drag.now];
      g.lineWidth = 2 / this.scale; g.strokeStyle = "#ffffff"; g.setLineDash([6 / this.scale, 4 / this.scale]);
      g.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
      g.setLineDash([]);
    }
  }

  toImage(e) {
    const r = this.c.getBoundingClientRect();
    return [(e.clientX - r.left - this.ox) / this.scale, (e.clientY - r.top - this.oy) / this.scale];
  }

  // The pixel under the cursor, as whole numbers (what a user would type for sam2 predict).
  clampPt([x, y]) { return [Math.min(Math.max(Math.floor(x), 0), this.w - 1), Math.min(Math.max(Math.floor(y), 0), this.hgt - 1)]; }

  inside([x, y]) { return x >= 0 && y >= 0 && x <= this.w && y <= this.hgt; }

  down(e) {
    if (!this.img) return;
    if (e.button === 1 || (e.button === 0 && this.space)) {
      this.drag = { pan: true, sx: e.clientX, sy: e.clientY, ox: this.ox, oy: this.oy }; e.preventDefault(); return;
    }
    const p = this.toImage(e);
    if (e.button === 2) { if (this.inside(p) && !this.seedMode) this.h.point(...this.clampPt(p), 0); return; }
    if (e.button !== 0 || !this.inside(p)) return;
    this.drag = { start: p, now: p, sx: e.clientX, sy: e.clientY, shift: e.shiftKey, box: false };
  }

  move(e) {
    const d = this.drag;
    if (!d) return;
    if (d.pan) { this.ox = d.ox + e.clientX - d.sx; this.oy = d.oy + e.clientY - d.sy; this.draw(); return; }
    d.now = this.toImage(e);
    if (!this.seedMode && Math.hypot(e.clientX - d.sx, e.clientY - d.sy) > DRAG_PX) d.box = true;
    if (d.box) this.draw();
  }

  up(e) {
    const d = this.drag;
    if (!d || e.button === 2) return;
    this.drag = null;
    if (d.pan) return;
    if (this.seedMode) { this.h.seed(...this.clampPt(d.start)); return; }
    if (d.box) {
      const [a, b] = [this.clampPt(d.start), this.clampPt(d.now)];
      this.draw();
      if (Math.abs(b[0] - a[0]) >= 2 && Math.abs(b[1] - a[1]) >= 2)
        this.h.box([Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])]);
      return;
    }
    this.h.point(...this.clampPt(d.start), d.shift ? 0 : 1);
  }

  wheel(e) {
    e.preventDefault();
    const r = this.c.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
    const k = Math.exp(-e.deltaY * 0.0015), s = Math.min(Math.max(this.scale * k, 0.05), 64);
    this.ox = mx - (mx - this.ox) * (s / this.scale); this.oy = my - (my - this.oy) * (s / this.scale);
    this.scale = s; this.draw();
  }
}

export function isTyping(e) {
  const t = e.target;
  return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
}
