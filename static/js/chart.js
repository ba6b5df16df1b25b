// A candle chart drawn as SVG from the chronicler's frames ({t, open, high, low, close,
// volume}, oldest first): one candle per frame, scaled to the frames' own low and high.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 600;
const HEIGHT = 180;
const PAD = 8;

function shape(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** Draws `frames` into `svg` (replacing what was there); an empty list says "no trades". */
export function drawCandles(svg, frames) {
  svg.replaceChildren();
  svg.dataset.candles = String(frames.length);
  if (!frames.length) {
    const text = shape("text", { x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "chart-empty" });
    text.textContent = "No trades yet in this market.";
    svg.append(text);
    return;
  }
  const highs = frames.map((frame) => Number(frame.high));
  const lows = frames.map((frame) => Number(frame.low));
  const top = Math.max(...highs);
  const bottom = Math.min(...lows);
  const range = top - bottom || top || 1;
  const y = (price) => PAD + ((top - Number(price)) / range) * (HEIGHT - 2 * PAD);
  const step = (WIDTH - 2 * PAD) / frames.length;
  const body = Math.max(1, step * 0.6);
  frames.forEach((frame, index) => {
    const x = PAD + index * step + step / 2;
    const rising = Number(frame.close) >= Number(frame.open);
    const kind = rising ? "candle-up" : "candle-down";
    svg.append(shape("line", { x1: x, x2: x, y1: y(frame.high), y2: y(frame.low), class: kind }));
    const upper = y(Math.max(Number(frame.open), Number(frame.close)));
    const lower = y(Math.min(Number(frame.open), Number(frame.close)));
    const rect = shape("rect", { x: x - body / 2, y: upper, width: body, height: Math.max(1, lower - upper), class: kind });
    const title = shape("title", {});
    title.textContent = `${new Date(frame.t).toLocaleString()}: open ${frame.open}, high ${frame.high}, low ${frame.low}, close ${frame.close}`;
    rect.append(title);
    svg.append(rect);
  });
}
