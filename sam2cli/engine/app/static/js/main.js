// sam2 app: the page. State lives on the server; the page shows a frame, sends clicks, and
// follows tracking through server-sent events. window.sam2app exposes the state and the
// click-to-mask latencies (scripts/bench_app.py and the browser tests read them).
import { api, listen } from "./api.js";
import { View, isTyping } from "./view.js";
import { paintRle, area } from "./rle.js";
import { Timeline, renderObjects, renderSeeds } from "./panel.js";

const $ = (id) => document.getElementById(id);
const S = {
  info: null, frame: 0, obj: null, data: null, seeds: null, keep: new Set(), image: null,
  busy: Promise.resolve(), tracking: false, trackedFrames: [], latencies: [], drawn: 0, errors: [],
};
window.sam2app = S;

const view = new View($("view"), { point: (x, y, l) => prompt({ op: "point", x, y, label: l }), box: (b) => prompt({ op: "box", box: b }), seed: toggleSeed });
const timeline = new Timeline($("timeline"), (f) => goto(f));
window.sam2appView = view;               // the view's zoom and pan (tests click image pixels)
window.sam2appGoto = (f) => goto(f);

function status(text, error = false) {
  const el = $("status");
  el.textContent = text; el.classList.toggle("error", error);
  if (error) S.errors.push(text);
}

// Requests that change something run one after the other, in the order of the clicks.
function serial(fn) {
  const run = S.busy.then(fn, fn);
  S.busy = run.catch(() => {});
  return run.catch((e) => { status(e.message, true); });
}

function colors() {
  const c = {};
  for (const o of S.info.objects) c[o.id] = o.color;
  return c;
}

function showFrame(data) {
  S.data = data;
  const onSeeds = S.seeds && S.seeds.frame === S.frame;
  view.batch(() => {
    view.setPrompts(onSeeds ? {} : data.prompts);
    view.setSeeds(onSeeds ? S.seeds.items : null, S.keep);
    view.setMasks(data.masks, colors(), S.obj);
  });
  S.drawn = performance.now();
  updateHistory();
}

function updateHistory() {
  const h = S.data && S.obj != null ? S.data.history[String(S.obj)] : null;
  $("undo").disabled = !h || !h[0]; $("redo").disabled = !h || !h[1];
}

function loadImage(f) {
  return new Promise((ok, bad) => {
    const img = new Image();
    img.onload = () => ok(img);
    img.onerror = () => bad(new Error(`cannot load frame ${f}`));
    img.src = api.imageUrl(f);
  });
}

// A frame shown while following Track needs no request of its own unless a prompt is on it: its
// masks came with the event, the video's size is known, and a click (which would want the undo
// history) cancels the tracking; track_done fetches the frame in full again.
function followed(f) { return S.tracking && S.info.mode === "video" && !S.info.prompted.includes(f); }
function followData(f, masks) { return { frame: f, hw: [S.info.height, S.info.width], masks, prompts: {}, history: {} }; }

let want = 0;
async function goto(f, masks = null) {
  const n = S.info.num_frames;
  f = Math.max(0, Math.min(n - 1, f));
  S.frame = f; want++;
  const mine = want;
  timeline.set(S.info, f);
  const label = S.info.mode === "video" ? `frame ${f + 1} / ${n}` : `image ${f + 1} / ${n}`;
  $("where").textContent = label;
  try {
    const [img, data] = await Promise.all([loadImage(f), masks && followed(f) ? followData(f, masks) : api.frame(f)]);
    if (mine !== want) return;
    S.image = img;
    view.batch(() => {
      view.setImage(img, data.hw[1], data.hw[0]);
      showFrame(masks ? { ...data, masks } : data);
    });
    if (!S.tracking) {
      api.view(f).catch(() => {});
      if (f + 1 < n) new Image().src = api.imageUrl(f + 1);
    }
  } catch (e) { status(e.message, true); }
}

function refreshObjects(objects, prompted) {
  if (objects) S.info.objects = objects;
  if (prompted) S.info.prompted = prompted;
  if (S.obj != null && !S.info.objects.some((o) => o.id === S.obj)) S.obj = null;
  renderObjects($("objects"), S.info, S.obj, objectActions);
  timeline.set(S.info, S.frame);
  updateTrackInfo();
}

function updateTrackInfo() {
  if (S.info.mode !== "video") return;
  const dirty = S.info.objects.filter((o) => o.dirty && o.frames.length).length;
  $("track-info").textContent = S.tracking ? "tracking..." : (dirty ? `${dirty} object(s) to track` : "up to date");
}

const objectActions = {
  select(id) { S.obj = id; refreshObjects(); if (S.data) showFrame(S.data); },
  rename: (id, name) => serial(async () => { const r = await api.updateObject(id, { name }); refreshObjects(r.objects); }),
  setClass: (id, cls) => serial(async () => { const r = await api.updateObject(id, { class: cls }); S.info.classes = r.classes; refreshObjects(r.objects); }),
  remove: (id) => serial(async () => {
    const r = await api.deleteObject(id);
    refreshObjects(r.objects, r.prompted); await goto(S.frame);
  }),
};

async function newObject() {
  const r = await api.addObject({});
  S.obj = r.obj_id; S.info.classes = r.classes;
  refreshObjects(r.objects);
  return r.obj_id;
}

function prompt(body) {
  const t0 = performance.now();
  return serial(async () => {
    if (S.obj == null) await newObject();
    const r = await api.prompt({ frame: S.frame, obj_id: S.obj, ...body });
    if (r.frame !== S.frame) return;
    refreshObjects(r.objects, r.prompted);
    showFrame(r);
    const t1 = performance.now();
    requestAnimationFrame(() => S.latencies.push({ op: body.op, drawn: t1 - t0, painted: performance.now() - t0 }));
  });
}

function history(op) {
  if (S.obj == null) return;
  prompt({ op });
}

function toggleSeed(x, y) {
  if (!S.seeds) return;
  const found = seedAt(Math.min(x, view.w - 1), Math.min(y, view.hgt - 1));
  if (found == null) return;
  if (S.keep.has(found)) S.keep.delete(found); else S.keep.add(found);
  view.setSeeds(S.seeds.items, S.keep);
  renderSeeds($("seeds"), S.seeds, S.keep, seedActions);
}

function seedAt(x, y) {  // the smallest proposal under the cursor (the inner one)
  let best = null, bestArea = Infinity;
  for (const s of S.seeds.items) {
    if (s.label[y * view.w + x] && s.area < bestArea) { best = s.id; bestArea = s.area; }
  }
  return best;
}

const seedActions = {
  keep: (all) => serial(async () => {
    const ids = all ? S.seeds.items.map((s) => s.id) : [...S.keep];
    const r = await api.seeds(ids);
    S.seeds = null; S.keep = new Set();
    renderSeeds($("seeds"), null, S.keep, seedActions);
    if (r.kept.length) S.obj = r.kept[r.kept.length - 1];
    refreshObjects(r.objects, r.prompted);
    if (r.frame === S.frame) showFrame(r);
    status(`kept ${r.kept.length} proposal(s) as objects`);
  }),
  drop: () => serial(async () => {
    await api.seeds([]);
    S.seeds = null; S.keep = new Set();
    renderSeeds($("seeds"), null, S.keep, seedActions);
    showFrame(S.data);
  }),
};

async function everything() {
  status("segmenting everything...");
  await serial(async () => {
    const r = await api.everything(S.frame);
    const [h, w] = S.data.hw;
    for (const s of r.seeds) { s.label = paintRle(s.rle, new Uint8Array(w * h), 1); s.area = area(s.rle); }
    S.seeds = { frame: r.frame, items: r.seeds }; S.keep = new Set();
    renderSeeds($("seeds"), S.seeds, S.keep, seedActions);
    if (r.frame === S.frame) showFrame(S.data);
    status(`${r.seeds.length} proposal(s): click them to choose, then Keep`);
  });
}

async function track() {
  await serial(async () => {
    S.trackSent = performance.now();
    const r = await api.track($("backward").checked);
    if (!r.started) { status("nothing to track: every object is up to date"); return; }
    S.tracking = true; S.trackedFrames = [];
    setProgress(0, r.total, 0);
    updateTrackInfo();
  });
}

function setProgress(done, total, fps) {
  $("progress").max = Math.max(total, 1); $("progress").value = done;
  $("fps").textContent = total ? `${done} / ${total} frames, ${fps.toFixed(1)} fps` : "";
}

// "Follow" shows the newest tracked frame, one at a time and at most 1000 / S.followMs a second,
// and the progress bar moves at most 1000 / S.progressMs times a second: the page never falls
// behind the tracker, and what the browser draws takes CPU from tracking where they share the
// machine. Without a GPU, Chromium spends ~44 ms of CPU on each frame shown (15 ms on the
// page's thread, the rest compositing) and ~9 ms on each move of the progress bar. On 2 cores,
// Track showing 2 frames a second took 1.11-1.18x `sam2 track`, against 1.04x with follow off
// (scripts/bench_app.py follow=on,off,500), so machines with few cores show 1 frame and
// move the bar twice a second (README, Web app). Every frame still arrives (trackedFrames) and
// is on the server when Track ends.
const FEW_CORES = !(navigator.hardwareConcurrency > 4);
S.followMs = FEW_CORES ? 1000 : 125;
S.progressMs = FEW_CORES ? 500 : 200;
const follow = { next: null, latest: null, running: false, last: 0, progressed: 0 };

async function followLoop() {
  follow.running = true;
  while (follow.next) {
    const wait = follow.last + S.followMs - performance.now();
    if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
    const ev = follow.next;
    if (!ev) break;  // tracking ended meanwhile: track_done shows the last frame
    follow.next = null; follow.last = performance.now();
    await goto(ev.frame, ev.masks);
  }
  follow.running = false;
}

function onEvent(ev) {
  if (ev.type === "tracked") {
    S.tracking = true;
    S.trackedFrames.push(ev.frame);
    follow.latest = ev;
    const now = performance.now();
    if (now - follow.progressed >= S.progressMs) {  // track_done shows the last one
      follow.progressed = now;
      setProgress(ev.done, ev.total, ev.fps);
    }
    if ($("follow").checked) { follow.next = ev; if (!follow.running) followLoop(); }
    else if (ev.frame === S.frame && S.data) showFrame({ ...S.data, masks: ev.masks });
  } else if (ev.type === "track_done") {
    const last = follow.next, latest = follow.latest;
    follow.next = null; follow.latest = null;
    if (last) S.frame = last.frame;
    if (latest) setProgress(latest.done, latest.total, latest.fps);
    S.tracking = false;
    S.lastTrack = { ...ev, ms: S.trackSent ? performance.now() - S.trackSent : null };
    if (ev.objects_state) refreshObjects(ev.objects_state);
    status(ev.error ? `tracking failed: ${ev.error}` : (ev.cancelled ? `cancelled after ${ev.done} frame(s); the frames done are kept` : `tracked ${ev.done} frame(s)`), !!ev.error);
    updateTrackInfo();
    goto(S.frame);
  } else if (ev.type === "overflow") goto(S.frame);
}

async function doExport(kinds) {
  status("exporting...");
  await serial(async () => {
    const r = await api.exportKinds(kinds);
    S.lastExport = r;
    status(`exported ${r.written.length} file(s) to ${r.run_dir}`);
  });
}

function jumpPrompted(dir) {
  const fs = S.info.prompted;
  const next = dir > 0 ? fs.find((f) => f > S.frame) : [...fs].reverse().find((f) => f < S.frame);
  if (next != null) goto(next);
}

function keys(e) {
  if (isTyping(e)) return;
  const k = e.key, ctrl = e.ctrlKey || e.metaKey;
  if (ctrl && (k === "z" || k === "Z")) { history(e.shiftKey ? "redo" : "undo"); e.preventDefault(); }
  else if (ctrl && k === "y") { history("redo"); e.preventDefault(); }
  else if (ctrl) return;
  else if (k === "ArrowRight") { goto(S.frame + (e.shiftKey ? 10 : 1)); e.preventDefault(); }
  else if (k === "ArrowLeft") { goto(S.frame - (e.shiftKey ? 10 : 1)); e.preventDefault(); }
  else if (k === "p" || k === "P") jumpPrompted(e.shiftKey ? -1 : 1);
  else if (k === "Home") goto(0);
  else if (k === "End") goto(S.info.num_frames - 1);
  else if (k === "n" || k === "N") serial(newObject);
  else if (k === "Escape") { if (S.seeds) seedActions.drop(); else if (S.obj != null) prompt({ op: "clear" }); }
  else if (k === "0") view.fit();
  else if (k === "t" || k === "T") { if (S.info.mode === "video") track(); }
  else if (k >= "1" && k <= "9") { const o = S.info.objects[Number(k) - 1]; if (o) objectActions.select(o.id); }
}

async function start() {
  S.info = await api.info();
  document.body.classList.add(`mode-${S.info.mode}`);
  $("title").textContent = `${S.info.name} - ${S.info.mode}`;
  $("run").textContent = `runs: ${S.info.run_dir}`;
  if (S.info.mode === "video") $("backward").checked = S.info.backward;
  S.obj = S.info.objects.length ? S.info.objects[0].id : null;
  S.tracking = S.info.tracking;
  refreshObjects();
  const exp = $("export-kinds");
  for (const kind of S.info.exports) {
    const b = document.createElement("button");
    b.textContent = kind; b.id = `export-${kind}`; b.onclick = () => doExport([kind]);
    exp.appendChild(b);
  }
  $("export-all").onclick = () => doExport("all");
  $("new-object").onclick = () => serial(newObject);
  $("undo").onclick = () => history("undo");
  $("redo").onclick = () => history("redo");
  $("clear").onclick = () => { if (S.obj != null) prompt({ op: "clear" }); };
  $("everything").onclick = everything;
  $("track").onclick = track;
  $("cancel").onclick = () => api.cancel().catch((e) => status(e.message, true));
  $("prev").onclick = () => goto(S.frame - 1);
  $("next").onclick = () => goto(S.frame + 1);
  $("prev-prompted").onclick = () => jumpPrompted(-1);
  $("next-prompted").onclick = () => jumpPrompted(1);
  window.addEventListener("keydown", keys);
  listen(onEvent);
  await goto(S.info.prompted.length ? S.info.prompted[0] : 0);
  S.ready = true;
  status("ready");
}

start().catch((e) => status(e.message, true));
