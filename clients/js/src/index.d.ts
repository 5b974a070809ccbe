// Types of @switchboard/client. Server frames follow services/switchboard/protocol.py
// (docs/frames.md lists them); close codes and routes come from src/generated.js.

export declare const CloseCode: Readonly<Record<string, number>> & {
  readonly NORMAL: 1000;
  readonly GOING_AWAY: 1001;
  readonly RECONNECT: 4000;
  readonly BAD_REQUEST: 4400;
  readonly UNAUTHORIZED: 4401;
  readonly FORBIDDEN: 4403;
  readonly NOT_FOUND: 4404;
  /** The "token expired, refresh" code, once closecodes.py has it. */
  readonly TOKEN_EXPIRED?: number;
};
export declare const CLOSE_REASONS: Readonly<Record<string, string>>;
export declare const TERMINAL_RANGES: ReadonlyArray<readonly [number, number]>;
export interface RouteSpec {
  path: string;
  params: Record<string, string | string[]>;
  query: Record<string, string | string[]>;
  staffOnly: boolean;
  binary: boolean;
}
export declare const ROUTES: Readonly<Record<RouteName, RouteSpec>>;

export declare function mayReconnect(code: number): boolean;
export declare function isTokenExpired(code: number): boolean;
export declare function routePath<R extends RouteName>(name: R, params?: RouteParams[R]): string;

// ---- frames (server -> client), by route

export interface ChatEntry {
  seq: number;
  user: string;
  message: string;
  timestamp: string;
  client_id?: string;
}
export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
  error: string;
  retry_after?: number;
}
export interface ChatFrames {
  history: { type: "history"; messages: ChatEntry[]; last_seq: number; truncated: boolean };
  online_users: { type: "online_users"; users: string[] };
  user_join: { type: "user_join"; user: string; timestamp: string };
  user_leave: { type: "user_leave"; user: string; timestamp: string };
  chat_message: { type: "chat_message" } & ChatEntry;
  user_typing: { type: "user_typing"; user: string };
}
export interface CollabFrames {
  document_content: {
    type: "document_content";
    document: number;
    title: string;
    content: string;
    seq: number;
    role: string;
    users: string[];
  };
  edit: {
    type: "edit";
    user: string;
    seq: number;
    action: "insert" | "delete";
    position: number;
    text: string;
    length?: number;
  };
  ack: {
    type: "ack";
    seq: number;
    applied: boolean;
    edits: Record<string, unknown>[];
    client_id?: string;
    duplicate?: boolean;
  };
  cursor: { type: "cursor"; user: string; position: number };
  user_joined: { type: "user_joined"; user: string };
  user_left: { type: "user_left"; user: string };
}
export interface DashboardStats {
  total_users: number | null;
  online_users: number | null;
  connections: number | null;
  connections_by_route: Record<string, number> | null;
  today_orders: number | null;
  today_revenue: string | null;
  report_tasks_running: number | null;
  reports_available?: boolean;
  series?: Record<string, (number | null)[]>;
  unavailable?: string[];
  computed_at?: string;
  [key: string]: unknown;
}
export interface Order {
  id: number;
  user: string;
  user_id: number;
  total: string;
  status: string;
  items: { name: string; quantity: number; price: string }[];
  created: string;
}
export interface DashboardFrames {
  initial_stats: { type: "initial_stats"; data: DashboardStats };
  stats_update: { type: "stats_update"; data: DashboardStats };
  new_order: { type: "new_order"; order: Order };
  alert: {
    type: "alert";
    id: number;
    level: "info" | "warning" | "critical";
    message: string;
    status: string;
    name: string;
    source: string;
    created: string;
  };
}
export interface NotificationsFrames {
  unread_count: { type: "unread_count"; count: number };
  notification: {
    type: "notification";
    id: number;
    title: string;
    message: string;
    url: string;
    timestamp: string;
  };
}
export interface TasksFrames {
  task_update: {
    type: "task_update";
    task_id: string;
    status: "started" | "progress" | "completed" | "failed";
    progress: number;
    message: string;
    result: { url?: string; [key: string]: unknown };
    timestamp: string;
  };
}
export interface RouteFrames {
  chat: ChatFrames;
  collab: CollabFrames;
  dashboard: DashboardFrames;
  notifications: NotificationsFrames;
  tasks: TasksFrames;
}
export type RouteName = keyof RouteFrames;
export interface RouteParams {
  chat: { room: string };
  collab: { doc: number | string };
  dashboard: Record<string, never>;
  notifications: Record<string, never>;
  tasks: Record<string, never>;
}

// ---- client frames

export interface ClientFrames {
  chat: { type: "chat_message"; message: string; client_id?: string } | { type: "typing" } | { type: "ping" };
  collab:
    | {
        type: "edit";
        action: "insert" | "delete";
        position: number;
        text?: string;
        length?: number;
        client_id?: string;
      }
    | { type: "cursor_move"; position: number }
    | { type: "ping" };
  dashboard: { type: "ping" };
  notifications: { type: "mark_read"; notification_id: number } | { type: "mark_all_read" } | { type: "ping" };
  tasks: { type: "ping" };
}

// ---- events

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";
export type ClientError =
  | { source: "server"; code: string; message: string; retryAfter?: number; frame: ErrorFrame }
  | { source: "close"; code: number; message: string }
  | { source: "socket" | "token" | "parse" | "client"; error: unknown };

export interface LifecycleEvents {
  open: { attempt: number };
  close: { code: number; reason: string; willReconnect: boolean };
  reconnecting: { attempt: number; delayMs: number; code: number | null };
  error: ClientError;
  state: { state: ConnectionState };
  binary: { data: ArrayBuffer | Uint8Array };
}
export type ServerFrame<R extends RouteName> = RouteFrames[R][keyof RouteFrames[R]] | ErrorFrame;
export type ConnectionEvents<R extends RouteName> = LifecycleEvents &
  RouteFrames[R] & { frame: ServerFrame<R> };

export type TokenSource = string | null | undefined | (() => string | null | Promise<string | null>);

export interface ConnectionOptions {
  /** ws://host:port or wss://host; default: this page's host. */
  baseUrl?: string;
  /** A token or a function giving one (called before every connect). None: the session cookie. */
  token?: TokenSource;
  /** How the token travels: subprotocol ["bearer", token] (default with a token), ?token=, or the cookie. */
  auth?: "subprotocol" | "query" | "cookie";
  /** Called when the server closes with CloseCode.TOKEN_EXPIRED; its token is used from then on. */
  refreshToken?: () => string | Promise<string>;
  backoff?: { initialMs?: number; maxMs?: number; factor?: number; jitter?: number };
  /** Ping every this often (0: never); no frame within pongTimeoutMs drops and reconnects. */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** Extra query parameters for each connect (declared ones of the route only). */
  query?: Record<string, string | number> | (() => Record<string, string | number>);
  /** A WebSocket constructor (Node: the ws package's). Default: globalThis.WebSocket. */
  WebSocket?: unknown;
  /** Passed as the constructor's third argument (ws: {headers: {Cookie, Origin}}). */
  webSocketOptions?: Record<string, unknown>;
}

type Listener<T> = (event: T) => void;

export declare class Connection<R extends RouteName = RouteName> {
  constructor(route: R, params?: RouteParams[R], options?: ConnectionOptions);
  readonly route: R;
  readonly path: string;
  readonly state: ConnectionState;
  /** Reconnect attempts since the last healthy connection. */
  readonly attempt: number;
  start(): this;
  on<K extends keyof ConnectionEvents<R>>(type: K, fn: Listener<ConnectionEvents<R>[K]>): () => void;
  once<K extends keyof ConnectionEvents<R>>(type: K, fn: Listener<ConnectionEvents<R>[K]>): () => void;
  off<K extends keyof ConnectionEvents<R>>(type: K, fn: Listener<ConnectionEvents<R>[K]>): void;
  send(frame: ClientFrames[R]): boolean;
  sendBinary(data: ArrayBuffer | Uint8Array): boolean;
  nextDelay(): number;
  /** Drop the socket as a network failure would; it reconnects. */
  drop(): void;
  close(): void;
}

export declare function connect<R extends RouteName>(
  route: R,
  params?: RouteParams[R],
  options?: ConnectionOptions,
): Connection<R>;

export interface ChatRoomEvents {
  message: ChatEntry;
  ack: { client_id: string; seq: number };
  pending: { pending: number };
  ready: { lastSeq: number | null; pending: number };
  gap: { after: number; before: number; error: unknown };
}
export interface ChatRoomOptions extends ConnectionOptions {
  /** Resume after this seq (messages up to it are taken as shown). */
  since?: number;
  /** http(s)://host for reading a truncated history's gap; default from baseUrl. */
  httpBaseUrl?: string;
  fetch?: typeof fetch;
}

export declare class ChatRoom extends Connection<"chat"> {
  constructor(room: string, options?: ChatRoomOptions);
  readonly room: string;
  /** The highest seq shown. */
  readonly lastSeq: number | null;
  /** Unacknowledged messages: client_id -> text, in send order. */
  readonly pending: ReadonlyMap<string, string>;
  /** True once the room's history arrived on the current socket. */
  readonly ready: boolean;
  on<K extends keyof (ConnectionEvents<"chat"> & ChatRoomEvents)>(
    type: K,
    fn: Listener<(ConnectionEvents<"chat"> & ChatRoomEvents)[K]>,
  ): () => void;
  sendMessage(message: string, client_id?: string): string;
  typing(): boolean;
}

export declare function chatRoom(room: string, options?: ChatRoomOptions): ChatRoom;
