// COCO run-length encoding (the server's mask format), decoded in the page.
// A compressed RLE string holds run lengths, background first, over the mask in column-major
// order (x outer, y inner), each number in 5-bit groups offset by 48, after the first two
// numbers as a difference to the number two before it (pycocotools' rleToString).

export function runLengths(counts) {
  const out = [];
  let p = 0;
  while (p < counts.length) {
    let x = 0, k = 0, more = true, c = 0;
    while (more) {
      c = counts.charCodeAt(p++) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);   // arithmetic, not bit shifts: counts may pass 2^31
      more = (c & 0x20) !== 0;
      k++;
    }
    if (c & 0x10) x -= 2 ** (5 * k);     // the last group's sign bit
    if (out.length > 2) x += out[out.length - 2];
    out.push(x);
  }
  return out;
}

// Paint one mask into `label` (a Uint8Array of H*W, row-major) with value `v`.
export function paintRle(rle, label, v) {
  const [h, w] = rle.size;
  const runs = typeof rle.counts === "string" ? runLengths(rle.counts) : rle.counts;
  let i = 0;
  for (let r = 0; r < runs.length; r++) {
    const n = runs[r];
    if (r & 1) {
      for (let j = i; j < i + n; j++) {
        const x = (j / h) | 0, y = j - x * h;
        label[y * w + x] = v;
      }
    }
    i += n;
  }
  return label;
}

export function area(rle) {
  const runs = typeof rle.counts === "string" ? runLengths(rle.counts) : rle.counts;
  let a = 0;
  for (let r = 1; r < runs.length; r += 2) a += runs[r];
  return a;
}
