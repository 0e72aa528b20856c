/** `T` with its `readonly` dropped: for an object still being built by the code that made it, before it is handed out. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };
