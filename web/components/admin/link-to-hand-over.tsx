import { CopyButton } from "../copy-button";

/** A link an admin hands over by hand (not mailed): read-only, selectable, with Copy. */
export function LinkToHandOver({ id, label, url }: { id: string; label: string; url: string }) {
  return (
    <div className="inline">
      <label htmlFor={id}>{label}</label>
      <input id={id} readOnly value={url} />
      <CopyButton text={url} />
    </div>
  );
}
