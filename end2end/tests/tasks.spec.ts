import { expect, test } from "@playwright/test";
import { logIn } from "./helpers";

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

test("pause and resume an agent from its card", async ({ page }) => {
  await logIn(page);
  await page.getByRole("link", { name: "Agents" }).click();
  await page.waitForLoadState("networkidle");
  const card = page.getByRole("article", { name: "Agent agent-3" });
  await expect(card).toContainText("simulated model");
  await card.getByRole("button", { name: "Pause" }).click();
  await expect(card.locator(".badge")).toHaveText("paused");
  await card.getByRole("button", { name: "Resume" }).click();
  await expect(card.locator(".badge")).toHaveText(/idle|working/);
});
