// The live loss curve: a plain SVG polyline over (step, loss), rescaled on every update, with
// the first and last loss and the step range as labels. No charting dependency.

const NS = 'http://www.w3.org/2000/svg';
const W = 600;
const H = 200;
const PAD = 32;

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function drawLossCurve(svg: SVGSVGElement, points: readonly { step: number; loss: number }[], totalSteps: number): void {
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const finite = points.filter((p) => Number.isFinite(p.loss));
  const children: SVGElement[] = [el('rect', { x: PAD, y: 8, width: W - PAD - 8, height: H - PAD - 8, class: 'frame' })];
  if (finite.length) {
    const lo = Math.min(...finite.map((p) => p.loss));
    const hi = Math.max(...finite.map((p) => p.loss));
    const span = hi - lo || 1;
    const x = (s: number) => PAD + ((W - PAD - 8) * s) / Math.max(totalSteps, 1);
    const y = (l: number) => 8 + (H - PAD - 8) * (1 - (l - lo) / span);
    children.push(el('polyline', { points: finite.map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' '), class: 'loss' }));
    children.push(el('text', { x: 2, y: 16 }, hi.toFixed(3)), el('text', { x: 2, y: H - PAD }, lo.toFixed(3)));
  }
  children.push(el('text', { x: PAD, y: H - 8 }, 'step 0'), el('text', { x: W - 8, y: H - 8, 'text-anchor': 'end' }, `step ${totalSteps}`));
  svg.replaceChildren(...children);
}
