/**
 * `<belfry-bell>`: Belfry's notification bell as one dependency-free custom element.
 *
 * @example
 * <script type="module" src="https://belfry.example.com/bell.js"></script>
 * <belfry-bell base-url="https://belfry.example.com" token="bfs_…"></belfry-bell>
 */
import { BelfryBell } from "./belfry-bell.js";

export type { Notification } from "./feed-client.js";
export type { Connection } from "./live-feed.js";
export { BelfryBell };

// Safe to import where there is no DOM (server-side rendering): nothing is defined there.
if (typeof customElements !== "undefined" && !customElements.get("belfry-bell")) {
  customElements.define("belfry-bell", BelfryBell);
}

declare global {
  interface HTMLElementTagNameMap {
    "belfry-bell": BelfryBell;
  }
}
