import { expect, logIn, test } from "./helpers";

test("the events page filters the stored history by type", async ({ page }) => {
  await logIn(page);
  await page.getByRole("link", { name: "Events", exact: true }).click();
  await expect(page.getByRole("status")).toHaveText("● Live");
  await expect(page.locator("tr[data-seq]").first()).toBeVisible();

  await page.getByLabel("Type").fill("agent");
  await page.getByLabel("Type").press("Enter");
  await page.getByLabel("Type").blur();
  await expect(page.locator("tr[data-seq]").first()).toContainText("agent.");
  for (const row of await page.locator("tr[data-seq]").all()) {
    await expect(row).toContainText("agent.");
  }
});
