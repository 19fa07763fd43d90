import { SIGNUP_MODES, type SignupMode } from "../config.js";
import type { Database } from "../db/database.js";

const SIGNUP_MODE = "signup_mode";

/**
 * Settings an admin changes at runtime, stored in the database (`gateway_setting`) so every
 * gateway instance and the admin command line see the same value; the environment gives the
 * default until an admin sets one.
 */
export class SettingsService {
  constructor(
    private readonly db: Database,
    private readonly defaultSignupMode: SignupMode,
  ) {}

  /** The sign-up policy in force: the admin's choice, else SIGNUP_MODE. */
  async signupMode(): Promise<SignupMode> {
    const row = await this.db.kysely
      .selectFrom("gateway_setting")
      .select("value")
      .where("name", "=", SIGNUP_MODE)
      .executeTakeFirst();
    const value = row?.value as SignupMode | undefined;
    return value && SIGNUP_MODES.includes(value) ? value : this.defaultSignupMode;
  }

  /** The environment's default (shown beside the admin's choice). */
  get signupModeDefault(): SignupMode {
    return this.defaultSignupMode;
  }

  async setSignupMode(mode: SignupMode): Promise<void> {
    const now = Date.now();
    await this.db.kysely
      .insertInto("gateway_setting")
      .values({ name: SIGNUP_MODE, value: mode, updatedAt: now })
      .onConflict((oc) => oc.column("name").doUpdateSet({ value: mode, updatedAt: now }))
      .execute();
  }
}
