import { expect, logIn, test } from "./helpers";

test("submit a task from the form and see its subtasks complete with a result", async ({ page }) => {
  await logIn(page);
  await page.getByRole("link", { name: "Tasks" }).click();
  await page.waitForLoadState("networkidle");
  await page
    .getByLabel("Describe the work")
    .fill("Scrape the pricing website. Query the sales database, then analyse the trends.");
  await page.getByRole("button", { name: "Submit task" }).click();
  await expect(page).toHaveURL(/\/tasks\/[0-9a-f-]{36}$/);

  // Live updates arrive with the event stream; until then the page refreshes on request.
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await expect(page.getByText("3/3 subtasks")).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  await expect(page.getByRole("heading", { name: "Result" })).toBeVisible();
  const s3 = page.locator('tr[data-subtask="s3"]');
  await expect(s3).toContainText("s2");
  await expect(s3).toContainText("[simulated] done");
});
