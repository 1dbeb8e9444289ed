// A small time-series line chart on a <canvas>: several series, gaps for missing points, a legend, nice axes.
// No dependencies. Usage: const c = new LineChart(canvas, {title, unit}); c.draw(times, [{label, color, values}]).
"use strict";

class LineChart {
  constructor(canvas, options) {
    this.canvas = canvas;
    this.title = options.title;
    this.unit = options.unit || "";
    this.minMax = options.minMax || 1; // the y axis reaches at least this value
  }

  static niceStep(range, ticks) {
    const raw = range / ticks;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const scaled = raw / power;
    const nice = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 2.5 ? 2.5 : scaled <= 5 ? 5 : 10;
    return nice * power;
  }

  static format(value) {
    if (value >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (value >= 1e4) return (value / 1e3).toFixed(0) + "k";
    if (value >= 1e3) return (value / 1e3).toFixed(1) + "k";
    if (value >= 10 || value === 0) return value.toFixed(0);
    return value.toFixed(value >= 1 ? 1 : 2);
  }

  // times: unix seconds, ascending; series: [{label, color, values: [number|null]}]
  draw(times, series) {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue("--muted").trim() || "#888";
    const line = style.getPropertyValue("--line").trim() || "#ddd";
    const text = style.getPropertyValue("--text").trim() || "#222";

    let max = 0, points = 0;
    for (const s of series) {
      for (const v of s.values) {
        if (v !== null && v !== undefined) { max = Math.max(max, v); points++; }
      }
    }
    const step = LineChart.niceStep(Math.max(max, this.minMax), 4);
    const top_value = Math.max(step, Math.ceil(Math.max(max, this.minMax) / step) * step);

    // Title and legend; the legend wraps onto more lines when it does not fit (the context keeps its state
    // between draws: set everything used).
    ctx.font = "600 13px system-ui, sans-serif";
    ctx.fillStyle = text;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(this.title + (this.unit ? " (" + this.unit + ")" : ""), 2, 2);
    ctx.font = "12px system-ui, sans-serif";
    let x = 2, y = 20;
    for (const s of series) {
      const label = s.label.length > 28 ? "…" + s.label.slice(-27) : s.label;
      const w = ctx.measureText(label).width + 26;
      if (x > 2 && x + w > width) { x = 2; y += 16; }
      ctx.fillStyle = s.color;
      ctx.fillRect(x, y + 5, 12, 3);
      ctx.fillStyle = muted;
      ctx.fillText(label, x + 16, y);
      x += w;
    }

    const left = 46, right = 10, top = y + 24, bottom = 22;
    const plotW = Math.max(10, width - left - right), plotH = Math.max(10, height - top - bottom);

    // Grid and y labels.
    ctx.strokeStyle = line;
    ctx.lineWidth = 1;
    ctx.fillStyle = muted;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (let v = 0; v <= top_value + step / 2; v += step) {
      const y = top + plotH - (v / top_value) * plotH;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y) + 0.5);
      ctx.lineTo(left + plotW, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillText(LineChart.format(v), left - 6, y);
    }

    // X labels: seconds before now.
    const n = times.length;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    if (n > 1) {
      const span = times[n - 1] - times[0];
      const every = span > 180 ? 60 : span > 60 ? 30 : 10;
      const end = times[n - 1];
      for (let ago = 0; ago <= span; ago += every) {
        const xPos = left + ((end - ago - times[0]) / span) * plotW;
        const label = ago === 0 ? "now" : ago >= 60 ? "-" + ago / 60 + "m" : "-" + ago + "s";
        ctx.fillText(label, xPos, top + plotH + 6);
      }
    }

    // Lines.
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      let drawing = false;
      for (let i = 0; i < n; i++) {
        const v = s.values[i];
        if (v === null || v === undefined) { drawing = false; continue; }
        const px = left + (n > 1 ? (i / (n - 1)) * plotW : plotW);
        const py = top + plotH - (Math.min(v, top_value) / top_value) * plotH;
        if (drawing) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        drawing = true;
      }
      ctx.stroke();
    }
    canvas.dataset.points = String(points);
    canvas.dataset.max = String(max);
    return points;
  }
}
