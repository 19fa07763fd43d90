import type { Metadata } from "next";
import { ChatView } from "@/components/chat/chat-view";

export const metadata: Metadata = { title: "Chat · Local LLM Stack" };

export default async function ChatPage({ params }: PageProps<"/chat/[id]">) {
  const { id } = await params;
  return <ChatView key={id} conversationId={id} />;
}
