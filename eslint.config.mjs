import tseslint from "typescript-eslint";

export default tseslint.config({ ignores: ["dist/**", "node_modules/**", ".demo/**", "bench/.work/**"] }, ...tseslint.configs.recommended, {
  rules: {
    "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    "@typescript-eslint/no-require-imports": "off",
    "no-constant-condition": ["error", { checkLoops: false }],
  },
});
