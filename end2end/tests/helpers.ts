import { expect, type Page } from "@playwright/test";

export const admin = {
  username: process.env.FLOTILLA_E2E_ADMIN ?? "admin",
  password: process.env.FLOTILLA_E2E_PASSWORD ?? "",
};

/** Collects console errors and uncaught page errors (hydration panics land here). */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  return errors;
}

/** Logs in as the bootstrap admin through the form, starting from a protected page. */
export async function logIn(page: Page) {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=\//);
  await page.getByLabel("Username").fill(admin.username);
  await page.getByLabel("Password").fill(admin.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/$/);
}
