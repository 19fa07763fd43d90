import type { Metadata } from "next";
import { ChatView } from "@/components/chat/chat-view";

export const metadata: Metadata = { title: "Chat · Local LLM Stack" };

export default function NewChatPage() {
  return <ChatView />;
}
