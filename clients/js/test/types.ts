// Compiled by `npm run typecheck` (tsc --noEmit): the types accept what the docs show and
// refuse what the protocol refuses (each @ts-expect-error must be an error).
import { chatRoom, connect, CloseCode, mayReconnect } from "@switchboard/client";

const room = chatRoom("lobby", { baseUrl: "ws://127.0.0.1:8080", token: async () => "t" });
room.on("message", (m) => m.seq.toFixed());
room.on("online_users", (f) => f.users.join(","));
room.on("close", (e) => e.willReconnect);
room.sendMessage("hi");
// @ts-expect-error a chat room has no notification frames
room.on("unread_count", () => {});

const bell = connect("notifications", {}, { token: "t" });
bell.on("unread_count", (f) => f.count + 1);
bell.send({ type: "mark_read", notification_id: 3 });
// @ts-expect-error notification_id is a number
bell.send({ type: "mark_read", notification_id: "3" });

const dash = connect("dashboard");
dash.on("new_order", (f) => f.order.total.toUpperCase());
// @ts-expect-error chat needs its room
connect("chat", {});

const code: number = CloseCode.UNAUTHORIZED;
mayReconnect(code);
