/** Inline outcome of a form: an error (role=alert) or a success note (role=status). */
export function SectionStatus({ error, ok }: { error?: string | null; ok?: string | null }) {
  if (error) {
    return (
      <p role="alert" className="alert alert-error">
        {error}
      </p>
    );
  }
  return (
    <p role="status" className={ok ? "alert alert-ok" : "visually-hidden"}>
      {ok}
    </p>
  );
}

export const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));
