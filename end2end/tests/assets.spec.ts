import { expect, test } from "./helpers";

test("the optimised bundle is content-hashed, precompressed and cached for good; pages are not cached", async ({ page, request }) => {
  const page_ = await request.get("/login");
  expect(page_.headers()["cache-control"]).toBe("no-cache");
  await page.goto("/login");
  const wasmHref = await page.locator('link[rel="preload"][href$=".wasm"]').getAttribute("href");
  expect(wasmHref).toMatch(/^\/pkg\/[0-9a-f]{16}\/flotilla_bg\.wasm$/);
  for (const [encoding, expected] of [
    ["br", "br"],
    ["gzip", "gzip"],
  ]) {
    const res = await request.get(wasmHref!, { headers: { "accept-encoding": encoding } });
    expect(res.status()).toBe(200);
    expect(res.headers()["content-encoding"]).toBe(expected);
    expect(res.headers()["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(res.headers()["content-type"]).toBe("application/wasm");
  }
  const css = await page.locator('link[rel="stylesheet"]').getAttribute("href");
  expect(css).toMatch(/^\/pkg\/[0-9a-f]{16}\/flotilla\.css$/);
  // The page hydrated from that bundle: the login form works without a reload.
  await expect(page.getByRole("button", { name: "Log in" })).toBeEnabled();
});
