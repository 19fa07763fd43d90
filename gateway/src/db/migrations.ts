import { type ColumnDefinitionBuilder, type Kysely, sql } from "kysely";
import { type Migration, Migrator } from "kysely/migration";
import type { DialectName } from "./database.js";

/**
 * The gateway's own migrations, in order; never edit one that has shipped. One set for both
 * engines: the SQLite DDL is exactly what shipped before PostgreSQL support, PostgreSQL gets
 * the equivalent types (see `types`).
 */
function migrations(dialect: DialectName): Record<string, Migration> {
  const t = types(dialect);
  return {
    "0001_conversations": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("conversation")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("userId", "text", (c) => c.notNull().references("user.id").onDelete("cascade"))
          .addColumn("title", "text")
          .addColumn("createdAt", t.int64, (c) => c.notNull())
          .addColumn("updatedAt", t.int64, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("conversation_user_updated")
          .on("conversation")
          .columns(["userId", "updatedAt"])
          .execute();
        await db.schema
          .createTable("message")
          .addColumn("seq", t.serial, t.autoId)
          .addColumn("id", "text", (c) => c.notNull().unique())
          .addColumn("conversationId", "text", (c) =>
            c.notNull().references("conversation.id").onDelete("cascade"),
          )
          .addColumn("role", "text", (c) => c.notNull())
          .addColumn("content", "text", (c) => c.notNull())
          .addColumn("finishReason", "text")
          .addColumn("model", "text")
          .addColumn("promptTokens", "integer")
          .addColumn("completionTokens", "integer")
          .addColumn("createdAt", t.int64, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("message_conversation_seq")
          .on("message")
          .columns(["conversationId", "seq"])
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await sql`drop table message`.execute(db);
        await sql`drop table conversation`.execute(db);
      },
    },
    "0002_limits_usage": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("limit_override")
          .addColumn("subject", "text", (c) => c.primaryKey())
          .addColumn("userId", "text", (c) => c.notNull().references("user.id").onDelete("cascade"))
          .addColumn("requestsPerMinute", "integer")
          .addColumn("tokensPerDay", t.int64)
          .addColumn("concurrentStreams", "integer")
          .addColumn("maxTokens", "integer")
          .addColumn("updatedAt", t.int64, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("usage_record")
          .addColumn("id", t.serial, t.autoId)
          .addColumn("ts", t.int64, (c) => c.notNull())
          .addColumn("userId", "text", (c) => c.notNull().references("user.id").onDelete("cascade"))
          .addColumn("apiKeyId", "text")
          .addColumn("route", "text", (c) => c.notNull())
          .addColumn("model", "text")
          .addColumn("promptTokens", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("completionTokens", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("quotaTokens", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("ttftMs", "integer")
          .addColumn("durationMs", "integer", (c) => c.notNull())
          .addColumn("status", "integer", (c) => c.notNull())
          .addColumn("outcome", "text", (c) => c.notNull())
          .addColumn("cacheHit", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("server", "text")
          .addColumn("errorCode", "text")
          .execute();
        await db.schema.createIndex("usage_ts").on("usage_record").column("ts").execute();
        await db.schema
          .createIndex("usage_user_ts")
          .on("usage_record")
          .columns(["userId", "ts"])
          .execute();
        await db.schema
          .createIndex("usage_key_ts")
          .on("usage_record")
          .columns(["apiKeyId", "ts"])
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await sql`drop table usage_record`.execute(db);
        await sql`drop table limit_override`.execute(db);
      },
    },
    "0003_invitations_settings": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("invitation")
          .addColumn("id", "text", (c) => c.primaryKey())
          // SHA-256 of the token (hex): the token itself is only in the link.
          .addColumn("tokenHash", "text", (c) => c.notNull().unique())
          .addColumn("email", "text", (c) => c.notNull())
          .addColumn("role", "text", (c) => c.notNull())
          .addColumn("invitedBy", "text", (c) => c.references("user.id").onDelete("set null"))
          .addColumn("createdAt", t.int64, (c) => c.notNull())
          .addColumn("expiresAt", t.int64, (c) => c.notNull())
          .addColumn("usedAt", t.int64)
          .addColumn("usedBy", "text", (c) => c.references("user.id").onDelete("set null"))
          .addColumn("revokedAt", t.int64)
          .execute();
        await db.schema.createIndex("invitation_email").on("invitation").column("email").execute();
        await db.schema
          .createTable("gateway_setting")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("value", "text", (c) => c.notNull())
          .addColumn("updatedAt", t.int64, (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await sql`drop table gateway_setting`.execute(db);
        await sql`drop table invitation`.execute(db);
      },
    },
    "0004_model_access": {
      async up(db: Kysely<unknown>) {
        // Who may use which model (allow/deny) and per-model daily token limits, each for a
        // role (`role:<name>`) or one user (`user:<id>`, gone with the user). `modelKey` is the
        // public model name trimmed and lower-cased: one rule per model and subject whatever
        // the spelling.
        for (const [table, value] of [
          ["model_access_rule", "allow"],
          ["model_limit", "tokensPerDay"],
        ] as const) {
          await db.schema
            .createTable(table)
            .addColumn("id", "text", (c) => c.primaryKey())
            .addColumn("model", "text", (c) => c.notNull())
            .addColumn("modelKey", "text", (c) => c.notNull())
            .addColumn("subject", "text", (c) => c.notNull())
            .addColumn("role", "text")
            .addColumn("userId", "text", (c) => c.references("user.id").onDelete("cascade"))
            .addColumn(value, value === "allow" ? "integer" : t.int64, (c) => c.notNull())
            .addColumn("updatedAt", t.int64, (c) => c.notNull())
            .addUniqueConstraint(`${table}_model_subject`, ["modelKey", "subject"])
            .execute();
        }
      },
      async down(db: Kysely<unknown>) {
        await sql`drop table model_limit`.execute(db);
        await sql`drop table model_access_rule`.execute(db);
      },
    },
    "0005_usage_estimated": {
      // 1 when the upstream reported no usage and the gateway counted the tokens itself.
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable("usage_record")
          .addColumn("estimated", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable("usage_record").dropColumn("estimated").execute();
      },
    },
  };
}

/**
 * Column types that differ: epoch milliseconds (and token limits) need 64 bits (SQLite's `integer` is
 * 64-bit, PostgreSQL's is 32-bit), and auto-incremented keys are `autoincrement` in SQLite
 * but an identity column in PostgreSQL (Kysely's autoIncrement() is MySQL/SQLite syntax).
 */
function types(dialect: DialectName) {
  const pg = dialect === "postgres";
  return {
    int64: pg ? ("bigint" as const) : ("integer" as const),
    serial: pg ? ("bigint" as const) : ("integer" as const),
    autoId: (c: ColumnDefinitionBuilder) =>
      pg ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
  };
}

/**
 * Applies pending gateway migrations and returns the names of those it applied; throws with
 * the failing migration's error.
 */
export async function migrateApp<T>(db: Kysely<T>, dialect: DialectName): Promise<string[]> {
  const migrator = new Migrator({
    db: db as unknown as Kysely<unknown>,
    provider: { getMigrations: async () => migrations(dialect) },
    migrationTableName: "gateway_migration",
    migrationLockTableName: "gateway_migration_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).map((r) => r.migrationName);
}
