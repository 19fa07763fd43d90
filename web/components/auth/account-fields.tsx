/**
 * The fields of a new account — name, email, password and its repetition — shared by the
 * sign-up form and the first-admin setup form. The form reads them by name
 * (`name`, `email`, `password`, `confirm`).
 */
export function AccountFields() {
  return (
    <>
      <div className="field">
        <label htmlFor="name">Name</label>
        <input id="name" name="name" autoComplete="name" required maxLength={100} />
      </div>
      <div className="field">
        <label htmlFor="email">Email</label>
        <input id="email" name="email" type="email" autoComplete="email" required />
      </div>
      <div className="field">
        <label htmlFor="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autoComplete="new-password"
          minLength={8}
          required
          aria-describedby="password-hint"
        />
        <small id="password-hint" className="muted">
          At least 8 characters.
        </small>
      </div>
      <div className="field">
        <label htmlFor="confirm">Repeat password</label>
        <input
          id="confirm"
          name="confirm"
          type="password"
          autoComplete="new-password"
          minLength={8}
          required
        />
      </div>
    </>
  );
}
