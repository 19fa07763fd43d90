import type { Metadata } from "next";
import { AdminModelsView } from "@/components/admin/models-view";

export const metadata: Metadata = { title: "Models · Admin · Local LLM Stack" };

export default function AdminModelsPage() {
  return <AdminModelsView />;
}
