import { expect, logIn, test } from "./helpers";

// Prints the overview's first-load figures in Chromium (a cold cache: a fresh context), for the
// README. Figures, not assertions on time: the assertions are on what was loaded.
test("the overview's first load, measured through the Performance API", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page);
  const fresh = await browser.newContext({ storageState: await context.storageState() });
  const cold = await fresh.newPage();
  await cold.goto("/", { waitUntil: "load" });
  await expect(cold.getByRole("heading", { name: "Overview" })).toBeVisible();
  const figures = await cold.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
    const wasm = performance
      .getEntriesByType("resource")
      .find((r) => r.name.endsWith(".wasm")) as PerformanceResourceTiming | undefined;
    return {
      html_ms: Math.round(nav.responseEnd - nav.startTime),
      dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd - nav.startTime),
      load_ms: Math.round(nav.loadEventEnd - nav.startTime),
      wasm_ms: wasm ? Math.round(wasm.responseEnd - wasm.startTime) : null,
      wasm_transfer_bytes: wasm ? wasm.transferSize : null,
      wasm_decoded_bytes: wasm ? wasm.decodedBodySize : null,
    };
  });
  console.log(`overview first load: ${JSON.stringify(figures)}`);
  expect(figures.wasm_transfer_bytes).not.toBeNull();
  // Sent compressed: what crosses the wire is a fraction of the decoded bundle.
  expect(figures.wasm_transfer_bytes!).toBeLessThan(figures.wasm_decoded_bytes! / 2);
  await fresh.close();
  await context.close();
});
