// @vitest-environment jsdom
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AdminModel, ModelAccess } from "@/lib/types";
import { PREFIX_CACHE, wrap } from "../test-kit";
import { AdminModelsView } from "./models-view";

vi.mock("next/navigation", () => ({ usePathname: () => "/admin/models" }));

const small: AdminModel = {
  id: "small",
  aliases: ["s"],
  kind: "chat",
  state: "ready",
  default: true,
  fallbacks: [],
  upstreams: [
    {
      kind: "llm-server",
      url: "http://127.0.0.1:8000",
      model: "gemma-3-270m",
      weight: 1,
      state: "up",
      prefix_cache: PREFIX_CACHE,
    },
  ],
  usage: { requests_today: 12, tokens_today: 3400 },
};
const large: AdminModel = {
  id: "large",
  aliases: [],
  kind: "base",
  state: "down",
  default: false,
  fallbacks: ["small"],
  upstreams: [
    {
      kind: "openai",
      url: "http://gpu-box:8000/v1",
      model: "Qwen/Qwen2.5-7B",
      weight: 2,
      state: "ejected",
    },
  ],
  usage: { requests_today: 0, tokens_today: 0 },
};

let access: ModelAccess;
let posted: { url: string; body: unknown }[];
let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  access = {
    rules: [{ id: "r1", model: "Large", role: "user", allow: false }],
    limits: [
      { id: "l1", model: "small", user_id: "u2", email: "b@example.org", tokens_per_day: 20000 },
    ],
  };
  posted = [];
  fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    const method = init?.method ?? "GET";
    if (url === "/api/admin/models") return Response.json({ models: [small, large] });
    if (url === "/api/admin/model-access" && method === "GET") return Response.json(access);
    if (method === "POST") {
      const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
      posted.push({ url, body });
      if (body.email === "nobody@example.org") {
        return Response.json(
          { error: { code: "UNKNOWN_USER", message: "No user with email nobody@example.org" } },
          { status: 400 },
        );
      }
      const entry = { id: `n${posted.length}`, ...body };
      if (url === "/api/admin/model-access") access.rules.push(entry as never);
      else access.limits.push(entry as never);
      return Response.json(entry);
    }
    if (method === "DELETE") {
      posted.push({ url, body: null });
      access.rules = access.rules.filter((r) => !url.endsWith(`/${r.id}`));
      return Response.json({ ok: true });
    }
    return Response.json({ error: { code: "NOT_FOUND", message: url } }, { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

const card = async (name: string) =>
  (await screen.findAllByTestId("admin-model")).find(
    (c) => within(c).getByRole("heading", { level: 2 }).textContent?.startsWith(name) ?? false,
  ) as HTMLElement;

describe("AdminModelsView", () => {
  it("lists each model with its state, usage, upstreams and its own rules and limits", async () => {
    render(wrap(<AdminModelsView />, "admin"));
    const s = await card("small");
    expect(within(s).getByTestId("model-state").textContent).toBe("ready");
    expect(within(s).getByText("default")).toBeTruthy();
    expect(within(s).getByText("3,400")).toBeTruthy();
    const upstreams = within(s).getByRole("table", { name: "Upstreams of small" });
    expect(within(upstreams).getByText("http://127.0.0.1:8000")).toBeTruthy();
    expect(within(s).getByText("gemma-3-270m")).toBeTruthy();
    expect(within(s).getByTestId("upstream-state").textContent).toBe("up");
    const limits = within(s).getByRole("table", { name: "Daily token limits of small" });
    expect(within(limits).getByText("b@example.org")).toBeTruthy();
    expect(within(limits).getByText("20,000")).toBeTruthy();
    expect(within(s).getByText("No rule: everyone may use small.")).toBeTruthy();
    const caches = within(s).getByRole("table", { name: "Prefix caches of small" });
    const [row] = within(caches).getAllByTestId("prefix-cache");
    expect(
      within(row as HTMLElement)
        .getAllByRole("cell")
        .map((c) => c.textContent),
    ).toEqual([
      "http://127.0.0.1:8000",
      "12.4 / 1,024 MiB",
      "2",
      "75%",
      "5,900",
      "6,000 of 8,000 (75%)",
    ]);

    const l = await card("large");
    expect(within(l).getByTestId("model-state").textContent).toBe("down");
    expect(within(l).getByText("base model: continues text")).toBeTruthy();
    expect(within(l).getByText("OpenAI-compatible")).toBeTruthy();
    expect(within(l).getByTestId("upstream-state").textContent).toBe("ejected");
    // An OpenAI-compatible upstream reports no prefix cache: no table.
    expect(within(l).queryByRole("table", { name: "Prefix caches of large" })).toBeNull();
    // The gateway matches names without case: a rule written "Large" is large's.
    const rules = within(l).getByRole("table", { name: "Access rules of large" });
    expect(within(rules).getByText("role user")).toBeTruthy();
    expect(within(rules).getByText("denied")).toBeTruthy();
  });

  it("adds a deny rule for one user by email, then removes a rule", async () => {
    const user = userEvent.setup();
    render(wrap(<AdminModelsView />, "admin"));
    const s = await card("small");
    const form = within(s).getByRole("form", { name: "Add an access rule for small" });
    await user.selectOptions(within(form).getByLabelText("For"), "email");
    await user.type(within(form).getByLabelText("Email"), " c@example.org ");
    await user.selectOptions(within(form).getByLabelText("Access"), "deny");
    await user.click(within(form).getByRole("button", { name: "Save rule" }));
    expect(await within(s).findByText("small: denied to c@example.org.")).toBeTruthy();
    expect(posted[0]).toEqual({
      url: "/api/admin/model-access",
      body: { model: "small", email: "c@example.org", allow: false },
    });
    const rules = await within(s).findByRole("table", { name: "Access rules of small" });
    expect(within(rules).getByText("c@example.org")).toBeTruthy();

    const l = await card("large");
    await user.click(
      within(l).getByRole("button", { name: "Remove the rule for role user on large" }),
    );
    expect(await within(l).findByText("No rule: everyone may use large.")).toBeTruthy();
    expect(posted.at(-1)?.url).toBe("/api/admin/model-access/r1");
  });

  it("sets a per-model daily limit for a role", async () => {
    const user = userEvent.setup();
    render(wrap(<AdminModelsView />, "admin"));
    const l = await card("large");
    const form = within(l).getByRole("form", { name: "Set a daily limit for large" });
    await user.selectOptions(within(form).getByLabelText("For"), "role:admin");
    await user.type(within(form).getByLabelText("Tokens per day"), "50000");
    await user.click(within(form).getByRole("button", { name: "Save limit" }));
    expect(await within(l).findByText("large: 50,000 tokens a day for role admin.")).toBeTruthy();
    expect(posted[0]).toEqual({
      url: "/api/admin/model-limits",
      body: { model: "large", role: "admin", tokens_per_day: 50000 },
    });
  });

  it("shows the gateway's refusal and keeps what was typed", async () => {
    const user = userEvent.setup();
    render(wrap(<AdminModelsView />, "admin"));
    const s = await card("small");
    const form = within(s).getByRole("form", { name: "Add an access rule for small" });
    await user.selectOptions(within(form).getByLabelText("For"), "email");
    await user.type(within(form).getByLabelText("Email"), "nobody@example.org");
    await user.click(within(form).getByRole("button", { name: "Save rule" }));
    expect((await within(s).findByRole("alert")).textContent).toContain(
      "No user with email nobody@example.org",
    );
    expect((within(form).getByLabelText("Email") as HTMLInputElement).value).toBe(
      "nobody@example.org",
    );
  });

  it("keeps rules of a model no longer served, so they can be removed", async () => {
    access.rules.push({ id: "r9", model: "retired", role: "user", allow: true });
    render(wrap(<AdminModelsView />, "admin"));
    const gone = await screen.findByRole("region", { name: "retired (not served)" });
    expect(within(gone).getByText("allowed")).toBeTruthy();
  });

  it("still lists the models when the rules cannot be loaded", async () => {
    fetchMock.mockImplementation(async (url: string) =>
      url === "/api/admin/models"
        ? Response.json({ models: [small] })
        : Response.json(
            { error: { code: "DB_DOWN", message: "Database unavailable" } },
            { status: 503 },
          ),
    );
    render(wrap(<AdminModelsView />, "admin"));
    expect(await card("small")).toBeTruthy();
    await waitFor(() =>
      expect(screen.getByRole("alert").textContent).toContain("Database unavailable"),
    );
  });

  it("is for admins only", () => {
    render(wrap(<AdminModelsView />));
    expect(screen.getByRole("alert").textContent).toContain("Only administrators");
    expect(fetchMock).not.toHaveBeenCalled();
  });
});
