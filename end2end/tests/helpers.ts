import { test as base, expect, type Page } from "@playwright/test";

export { expect };

/**
 * Every test fails on a Content-Security-Policy violation on any page it opened: the policy
 * is part of the product, and a page that breaks it is a broken page.
 */
export const test = base.extend<{ cspGuard: void }>({
  cspGuard: [
    async ({ page }, use) => {
      const violations: string[] = [];
      await page.exposeFunction("__flotillaCspViolation", (v: string) => violations.push(v));
      await page.addInitScript(() => {
        document.addEventListener("securitypolicyviolation", (e) => {
          const report = `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`;
          (window as unknown as { __flotillaCspViolation: (v: string) => void }).__flotillaCspViolation(report);
        });
      });
      await use();
      expect(violations, "Content-Security-Policy violations").toEqual([]);
    },
    { auto: true },
  ],
});

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
  // The overview itself: the login page's own URL (`/login?next=/`) also ends in a slash.
  await expect(page).toHaveURL(/^https?:\/\/[^/]+\/$/);
}
