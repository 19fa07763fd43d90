import { type Kysely, sql } from "kysely";
import { type Migration, Migrator } from "kysely/migration";

/** The gateway's own migrations, in order; never edit one that has shipped. */
const migrations: Record<string, Migration> = {
  "0001_conversations": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("conversation")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("userId", "text", (c) => c.notNull().references("user.id").onDelete("cascade"))
        .addColumn("title", "text")
        .addColumn("createdAt", "integer", (c) => c.notNull())
        .addColumn("updatedAt", "integer", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("conversation_user_updated")
        .on("conversation")
        .columns(["userId", "updatedAt"])
        .execute();
      await db.schema
        .createTable("message")
        .addColumn("seq", "integer", (c) => c.primaryKey().autoIncrement())
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
        .addColumn("createdAt", "integer", (c) => c.notNull())
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
        .addColumn("tokensPerDay", "integer")
        .addColumn("concurrentStreams", "integer")
        .addColumn("maxTokens", "integer")
        .addColumn("updatedAt", "integer", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("usage_record")
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("ts", "integer", (c) => c.notNull())
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
};

/** Applies pending gateway migrations; throws with the failing migration's error. */
export async function migrateApp<T>(db: Kysely<T>): Promise<void> {
  const migrator = new Migrator({
    db: db as unknown as Kysely<unknown>,
    provider: { getMigrations: async () => migrations },
    migrationTableName: "gateway_migration",
    migrationLockTableName: "gateway_migration_lock",
  });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}
