"use client";

import { type FormEvent, startTransition, useActionState } from "react";
import { errorText } from "./section-status";

/** What a form or a section's action shows: an error (role=alert) or a success note (role=status). */
export interface FormOutcome {
  error?: string | null;
  ok?: string | null;
}

/**
 * Runs on submit with the form's data and element; throws or returns `{ error }` to fail,
 * `{}` when there is nothing to show.
 */
export type FormAction = (form: FormData, element: HTMLFormElement) => Promise<FormOutcome>;

/** A task of a section (save, approve, revoke…): its outcome replaces the previous one. */
export type Task = () => Promise<FormOutcome>;

/**
 * The tasks of one form or section through React 19's `useActionState`: `run(task)` starts
 * one (they run one after the other), `pending` while it runs (the last outcome is hidden
 * then), its outcome afterwards; a thrown error becomes the message. `onSubmit(action)` makes
 * a form's submit handler: submitted from `onSubmit`, not `<form action>`, because React
 * resets a form after an action given as its `action`, and a refused sign-in must keep what
 * the user typed.
 */
export function useActions() {
  const [outcome, dispatch, pending] = useActionState(async (_: FormOutcome, task: Task) => {
    try {
      return await task();
    } catch (err) {
      return { error: errorText(err) };
    }
  }, {});
  const run = (task: Task) => startTransition(() => dispatch(task));
  const onSubmit = (action: FormAction) => (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const element = e.currentTarget;
    const form = new FormData(element);
    run(() => action(form, element));
  };
  return { outcome: pending ? {} : outcome, pending, run, onSubmit };
}

/** One form's submission (see `useActions`). */
export function useFormAction(action: FormAction) {
  const { outcome, pending, onSubmit } = useActions();
  return { outcome, pending, onSubmit: onSubmit(action) };
}
