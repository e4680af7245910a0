/**
 * An unbounded single-consumer queue exposed as an AsyncIterable: push() never blocks, the
 * iterator yields items in order and finishes after end(). Terminal resize events use it, so
 * none is lost while the backend is busy.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #ended = false;
  #wake?: () => void;

  /** Adds an item (ignored after end()). */
  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#wake?.();
  }

  /** No more items: the iteration finishes once the queued ones are taken. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  /** True after end(). */
  get ended(): boolean {
    return this.#ended;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.#items.length > 0) {
        yield this.#items.shift()!;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }
}
