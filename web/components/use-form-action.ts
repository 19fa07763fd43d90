"use client";

import { type FormEvent, startTransition, useActionState } from "react";
import { errorText } from "./section-status";

/** What a submitted form shows: an error (role=alert) or a success note (role=status). */
export interface FormOutcome {
  error?: string | null;
  ok?: string | null;
}

/**
 * Runs on submit with the form's data and element; throws or returns `{ error }` to fail,
 * `{}` when there is nothing to show.
 */
export type FormAction = (form: FormData, element: HTMLFormElement) => Promise<FormOutcome>;

/**
 * A form's submission through React 19's `useActionState`: `pending` while the action runs
 * (the outcome is cleared then), its outcome afterwards; a thrown error becomes the message.
 * Submitted from `onSubmit`, not `<form action>`: React resets a form after an action
 * given as its `action`, and a refused sign-in must keep what the user typed.
 */
export function useFormAction(action: FormAction) {
  const [outcome, dispatch, pending] = useActionState(
    async (_: FormOutcome, [form, element]: [FormData, HTMLFormElement]) => {
      try {
        return await action(form, element);
      } catch (err) {
        return { error: errorText(err) };
      }
    },
    {},
  );
  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const element = e.currentTarget;
    const form = new FormData(element);
    startTransition(() => dispatch([form, element]));
  };
  return { outcome: pending ? {} : outcome, pending, onSubmit };
}
