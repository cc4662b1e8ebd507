import { expect, logIn, test } from "./helpers";
import type { Browser, Page } from "@playwright/test";

// The editor at 500 nodes and 600 edges, measured in Chromium for the README: the cold load of
// the workflow (to a live canvas, as the page marks it on its Performance timeline) and, per
// frame, the main thread's work and the interval while dragging a node and while panning. The
// same gestures on a 50-node workflow in the same run are the baseline: what this browser, this
// machine and Playwright's input give a small graph. Figures are printed, not asserted on; the
// assertions are on what was drawn and moved.

const COLS = 25;

/** `n` nodes in rows of 25 with about 1.2 edges a node, every edge to a higher index (acyclic). */
function workflow(n: number) {
  const nodes = Array.from({ length: n }, (_, i) => ({
    key: `n${i}`,
    kind: "agent",
    capability: "data_analysis",
    prompt: `step ${i}`,
    position: { x: (i % COLS) * 220, y: Math.floor(i / COLS) * 120 },
  }));
  const edges: { from: string; to: string }[] = [];
  // Down each column, then diagonals.
  for (let i = 0; i + COLS < n; i++) edges.push({ from: `n${i}`, to: `n${i + COLS}` });
  for (let i = 0; i + COLS + 1 < n && edges.length < Math.round(n * 1.2); i++) {
    if (i % COLS !== COLS - 1) edges.push({ from: `n${i}`, to: `n${i + COLS + 1}` });
  }
  return { nodes, edges };
}

/** p50/p95/max of a list of durations, rounded to 0.1 ms. */
function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 10) / 10;
  return { n: s.length, p50: at(0.5), p95: at(0.95), max: at(1) };
}

/**
 * Starts recording, in the page, for each frame: its interval from the last one, and its main-
 * thread work — the pointermove handlers run since the last frame plus the frame's own update
 * (requestAnimationFrame callbacks, style, layout and paint, timed up to the first task after it).
 */
async function record(page: import("@playwright/test").Page) {
  await page.evaluate(() => {
    const w = window as unknown as Record<string, unknown>;
    const rec = { frames: [] as number[], work: [] as number[], handlers: [] as number[], on: true };
    w.__rec = rec;
    let last = performance.now();
    let started = 0;
    let pending = 0;
    const after = new MessageChannel();
    let frameStart = 0;
    after.port1.onmessage = () => {
      rec.work.push(pending + performance.now() - frameStart);
      pending = 0;
    };
    const tick = (t: number) => {
      rec.frames.push(t - last);
      last = t;
      frameStart = performance.now();
      after.port2.postMessage(0);
      if (rec.on) requestAnimationFrame(tick);
    };
    requestAnimationFrame((t) => {
      last = t;
      pending = 0;
      requestAnimationFrame(tick);
    });
    // Capture on window runs before the app's handlers, bubbling on window after them.
    window.addEventListener("pointermove", () => (started = performance.now()), { capture: true });
    window.addEventListener("pointermove", () => {
      const d = performance.now() - started;
      rec.handlers.push(d);
      pending += d;
    });
  });
}

async function stop(page: import("@playwright/test").Page) {
  return page.evaluate(() => {
    const rec = (window as unknown as Record<string, { frames: number[]; work: number[]; handlers: number[]; on: boolean }>).__rec;
    rec.on = false;
    return { frames: rec.frames.slice(1), work: rec.work.slice(1), handlers: rec.handlers };
  });
}

/** What is printed for one gesture. */
function figures(r: { frames: number[]; work: number[]; handlers: number[] }) {
  return { frame_work_ms: summary(r.work), frame_interval_ms: summary(r.frames), pointermove_script_ms: summary(r.handlers) };
}

/** Opens the workflow in a fresh context (cold cache), then drags a node and pans, recording. */
async function measure(browser: Browser, storageState: Awaited<ReturnType<import("@playwright/test").BrowserContext["storageState"]>>, n: number) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } , storageState });
  const page = await context.newPage();
  const def = workflow(n);
  const created = await page.request.post("/api/v1/workflows", { data: { name: `${n} nodes`, definition: def } });
  expect(created.status()).toBe(201);
  const { id, state } = await created.json();
  expect(state).toBe("ready");

  await page.goto(`/workflows/${id}`);
  await page.waitForFunction(() => performance.getEntriesByName("editor-live").length > 0, null, { polling: 50 });
  const load = await page.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
    return {
      html_ms: Math.round(n.responseEnd - n.startTime),
      load_ms: Math.round(n.loadEventEnd - n.startTime),
      live_ms: Math.round(performance.getEntriesByName("editor-live")[0].startTime),
    };
  });
  // Every node and edge is drawn: near the view one by one, the rest as placeholder paths.
  const placeholders = async (what: string) => Number(await page.locator(what).getAttribute("data-count"));
  await expect.poll(async () => (await page.locator(".wf-node").count()) + (await placeholders(".far-nodes"))).toBe(n);
  await expect.poll(async () => (await page.locator(".wf-edge").count()) + (await placeholders(".far-edges"))).toBe(def.edges.length);
  const far = await placeholders(".far-nodes");

  // The same frames with nothing happening.
  await record(page);
  await page.waitForTimeout(1000);
  const idle = await stop(page);

  // Drag one node across the canvas with real pointer input.
  const box = await page.locator('.wf-node[data-key="n26"] rect').boundingBox();
  if (!box) throw new Error("no node box");
  await record(page);
  if (n === 500) await browser.startTracing(page, { path: "/tmp/trace-drag.json", categories: ["devtools.timeline", "disabled-by-default-devtools.timeline", "disabled-by-default-devtools.timeline.frame", "cc", "viz", "gpu", "benchmark", "input", "blink", "toplevel"] });
  await page.mouse.move(box.x + 20, box.y + 20);
  await page.mouse.down();
  await page.mouse.move(box.x + 420, box.y + 260, { steps: 120 });
  await page.mouse.up();
  const drag = await stop(page);
  if (n === 500) await browser.stopTracing();
  const moved = await page.locator('.wf-node[data-key="n26"] rect').boundingBox();
  expect(moved!.x).toBeGreaterThan(box.x + 300);
  const saved = await (await page.request.get(`/api/v1/workflows/${id}`)).json();
  expect(saved.version).toBe(1);

  // Pan by dragging the background: from between two nodes of a row (no node, no edge there)
  // to the same place two rows up and a column left.
  const first = await page.locator('.wf-node[data-key="n0"] rect').boundingBox();
  if (!first) throw new Error("no node box");
  const zoom = first.width / 180;
  const gap = (col: number, row: number) => ({ x: first.x + (col * 220 + 200) * zoom, y: first.y + (row * 120 + 28) * zoom });
  await record(page);
  await page.mouse.move(gap(1, 2).x, gap(1, 2).y);
  await page.mouse.down();
  await page.mouse.move(gap(0, 0).x, gap(0, 0).y, { steps: 120 });
  await page.mouse.up();
  const pan = await stop(page);
  const after = await page.locator('.wf-node[data-key="n0"] rect').boundingBox();
  expect(after!.x).toBeLessThan(first.x - 100 * zoom);
  await context.close();
  return { load: { ...load, nodes_drawn_as_placeholders: far }, idle: figures(idle), drag: figures(drag), pan: figures(pan) };
}

test("500 nodes and 600 edges: cold load, dragging a node and panning, measured against 50 nodes", async ({ browser }) => {
  test.setTimeout(120_000);
  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page);
  const storageState = await context.storageState();
  await context.close();
  const small = await measure(browser, storageState, 50);
  const large = await measure(browser, storageState, 500);
  expect(large.load.nodes_drawn_as_placeholders).toBeGreaterThan(0);
  for (const [name, r] of [["50 nodes (baseline)", small], ["500 nodes", large]] as const) {
    for (const [what, figures] of Object.entries(r)) console.log(`editor ${name} ${what}: ${JSON.stringify(figures)}`);
  }
});
