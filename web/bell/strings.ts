/** Every string the bell shows or announces, in each supported locale. */
export interface Strings {
  /** The button's accessible name: `n` is the exact unread count. */
  button(n: number): string;
  title: string;
  close: string;
  filter: string;
  all: string;
  unread: string;
  markAll: string;
  more: string;
  loading: string;
  empty: string;
  emptyUnread: string;
  offline: string;
  error: string;
  retry: string;
  signedOut: string;
  unreadItem: string;
  announceOne(title: string): string;
  announceMany(n: number): string;
}

const en: Strings = {
  button: (n) => `Notifications, ${n} unread`,
  title: "Notifications",
  close: "Close notifications",
  filter: "Show",
  all: "All",
  unread: "Unread",
  markAll: "Mark all as read",
  more: "Load more",
  loading: "Loading notifications…",
  empty: "No notifications yet.",
  emptyUnread: "You're all caught up: no unread notifications.",
  offline: "You're offline. Notifications will update when the connection is back.",
  error: "Notifications couldn't be loaded. The service may be busy.",
  retry: "Try again",
  signedOut: "Your session has expired. Reload the page to see notifications.",
  unreadItem: "Unread: ",
  announceOne: (title) => `New notification: ${title}`,
  announceMany: (n) => `${n} new notifications`,
};

const zh: Strings = {
  button: (n) => `通知，${n} 条未读`,
  title: "通知",
  close: "关闭通知",
  filter: "显示",
  all: "全部",
  unread: "未读",
  markAll: "全部标为已读",
  more: "加载更多",
  loading: "正在加载通知…",
  empty: "暂无通知。",
  emptyUnread: "没有未读通知。",
  offline: "网络已断开。恢复连接后通知将自动更新。",
  error: "通知加载失败，服务可能繁忙。",
  retry: "重试",
  signedOut: "登录已过期，请刷新页面后查看通知。",
  unreadItem: "未读：",
  announceOne: (title) => `新通知：${title}`,
  announceMany: (n) => `${n} 条新通知`,
};

/** The strings for `locale` (`en`, `zh`, or a tag such as `zh-CN`); English otherwise. */
export function stringsFor(locale: string | null): { tag: "en" | "zh"; strings: Strings } {
  return locale?.toLowerCase().startsWith("zh") ? { tag: "zh", strings: zh } : { tag: "en", strings: en };
}
