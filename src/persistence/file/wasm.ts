/**
 * The few WebAssembly APIs the file layer uses, typed here because the project compiles
 * without the DOM library (which is where TypeScript declares `WebAssembly`).
 */

/** A compiled WebAssembly module (opaque; structured-cloneable to workers). */
export type WasmModule = object & { readonly __brand?: 'WasmModule' };
export type WasmInstance = object & { readonly __brand?: 'WasmInstance' };

interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: object): Promise<WasmInstance>;
  readonly Module: abstract new (...args: never[]) => WasmModule;
}

export const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export function isWasmModule(v: unknown): v is WasmModule {
  return typeof v === 'object' && v !== null && v instanceof wasmApi.Module;
}
