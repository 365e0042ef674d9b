// Every component uses runes ($state, $props…); the legacy syntax is refused.
export default {
  compilerOptions: { runes: true },
};
