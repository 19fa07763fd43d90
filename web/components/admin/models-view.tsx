"use client";

import { api } from "@/lib/api";
import { accessOf, unlistedModels } from "@/lib/models";
import type { AdminModels, ModelAccess } from "@/lib/types";
import { SectionStatus } from "../section-status";
import { useResource } from "../use-resource";
import { AdminPage } from "./admin-nav";
import { ModelAccessEditor } from "./model-access-editor";
import { ModelCard } from "./model-card";

/** States change (a model loads, an upstream goes down): asked again while the page is open. */
const REFRESH_MS = 10_000;
const NO_ACCESS: ModelAccess = { rules: [], limits: [] };

/** /admin/models: every model the gateway routes, and who may use it. */
export function AdminModelsView() {
  return (
    <AdminPage title="Models">
      <ModelsSections />
    </AdminPage>
  );
}

function ModelsSections() {
  const models = useResource(api.adminModels, { refreshMs: REFRESH_MS });
  const access = useResource(api.adminModelAccess);
  // Without the rules (their load failed, said above) the models are still worth seeing.
  const rules = access.data ?? (access.error ? NO_ACCESS : null);
  return (
    <>
      <section className="panel stack" aria-labelledby="models-help-h">
        <h2 id="models-help-h">How models are served and shared</h2>
        <p className="muted">
          The gateway serves the models of its routing file, <code>GATEWAY_MODELS_FILE</code>
          (without one, the models its llm-servers list). Each public name goes to a pool of
          upstreams, our llm-servers or any OpenAI-compatible server, and to its fallbacks when the
          whole pool is down. The README's section “Several models, other servers” shows how to set
          one up.
        </p>
        <p className="muted">
          Access: with no rule for a user, a model is open to them; a rule for one user beats the
          rule for their role. To keep a model for a few people, deny it to role user and allow it
          to each of them by email. A daily limit counts a model's tokens on top of the total daily
          quota.
        </p>
      </section>
      <SectionStatus error={models.error ?? access.error} />
      {models.data && rules ? (
        <ModelList models={models.data} access={rules} onAccessChanged={access.reload} />
      ) : models.error || access.error ? null : (
        <p className="muted">Loading…</p>
      )}
    </>
  );
}

function ModelList({
  models,
  access,
  onAccessChanged,
}: {
  models: AdminModels;
  access: ModelAccess;
  onAccessChanged: () => Promise<void>;
}) {
  const unlisted = unlistedModels(
    access,
    models.models.map((m) => m.id),
  );
  return (
    <>
      {models.models.length === 0 ? (
        <p className="muted">No model is served: no upstream lists one yet.</p>
      ) : null}
      {models.models.map((m) => (
        <ModelCard
          key={m.id}
          model={m}
          {...accessOf(access, m.id)}
          onAccessChanged={onAccessChanged}
        />
      ))}
      {unlisted.map((name) => (
        <section
          key={name}
          className="panel stack"
          aria-label={`${name} (not served)`}
          data-testid="unlisted-model"
        >
          <h2>
            {name} <span className="tag">not served now</span>
          </h2>
          <p className="muted">
            Rules and limits kept for a model the gateway does not serve now (removed from the
            routing file, or not added yet).
          </p>
          <ModelAccessEditor model={name} {...accessOf(access, name)} onChanged={onAccessChanged} />
        </section>
      ))}
    </>
  );
}
