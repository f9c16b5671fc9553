import { escapeControl } from '../../core/printable.js';

/**
 * TorchScript's serialized source (the `code/__torch__/...py` records of a torch.jit.save
 * archive) as the small Python subset it is: a tokenizer with Python's indentation rules and a
 * recursive-descent parser for classes, methods, assignments, returns and expressions (calls,
 * attributes, subscripts, tuples, lists, literals, arithmetic). Nothing is ever executed; the
 * lowering (lower.ts) walks the tree.
 *
 * Written here rather than taken from a library: the JavaScript Python parsers are full-language
 * grammars (large, tree-sitter native builds), while this subset is a few hundred lines and can
 * bound its own time and memory on hostile text: the source size, the token count and the
 * nesting depth are capped, and every loop consumes a token.
 *
 * Statements outside the subset (`if`, `for`, `while`, `with`, ...) are kept as `unsupported`
 * statements with their line, so a method that is never called does not stop the read and one
 * that is gives one line naming the construct.
 */

export const MAX_SOURCE_BYTES = 16 << 20;
export const MAX_TOKENS = 4_000_000;
/** Brackets and expressions nested deeper than this are refused (the parser recurses on them). */
export const MAX_DEPTH = 100;

export class SyntaxProblem extends Error {
  constructor(
    readonly line: number,
    readonly expected: string,
  ) {
    super(`line ${line}: ${expected}`);
  }
}

type TokenKind = 'name' | 'number' | 'string' | 'op' | 'newline' | 'indent' | 'dedent' | 'end';

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly line: number;
  /** Numbers: the value; strings: the decoded text. */
  readonly value?: number | string;
  /** A number written with a point or exponent (a Python float). */
  readonly float?: boolean;
}

const OPERATORS = ['**', '//', '->', '==', '!=', '<=', '>=', '(', ')', '[', ']', '{', '}', ',', ':', '.', '=', '+', '-', '*', '/', '%', '<', '>', '@', '&', '|', '^', '~'];

export function tokenize(text: string): Token[] {
  if (text.length > MAX_SOURCE_BYTES) throw new SyntaxProblem(1, `source of at most ${MAX_SOURCE_BYTES} bytes`);
  const tokens: Token[] = [];
  const indents = [0];
  let depth = 0;
  let line = 1;
  let i = 0;
  let atLineStart = true;
  const push = (t: Token) => {
    if (tokens.length >= MAX_TOKENS) throw new SyntaxProblem(line, `at most ${MAX_TOKENS} tokens`);
    tokens.push(t);
  };
  while (i < text.length) {
    if (atLineStart && depth === 0) {
      let col = 0;
      while (i < text.length && (text[i] === ' ' || text[i] === '\t')) {
        col += text[i] === '\t' ? 8 - (col % 8) : 1;
        i++;
      }
      const c = text[i];
      // Blank and comment lines do not change the indentation.
      if (c === '\n' || c === '\r' || c === '#' || c === undefined) {
        if (c === '#') while (i < text.length && text[i] !== '\n') i++;
        if (text[i] === '\r') i++;
        if (text[i] === '\n') {
          i++;
          line++;
        }
        continue;
      }
      atLineStart = false;
      if (col > indents[indents.length - 1]!) {
        indents.push(col);
        push({ kind: 'indent', text: '', line });
      } else {
        while (col < indents[indents.length - 1]!) {
          indents.pop();
          push({ kind: 'dedent', text: '', line });
        }
        if (col !== indents[indents.length - 1]) throw new SyntaxProblem(line, 'an indentation matching an enclosing block');
      }
    }
    const c = text[i]!;
    if (c === '\n') {
      i++;
      if (depth === 0) {
        push({ kind: 'newline', text: '\n', line });
        atLineStart = true;
      }
      line++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      i += 2;
      line++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      push({ kind: 'name', text: text.slice(i, j), line });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^(0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)/.exec(text.slice(i, i + 64));
      if (!m) throw new SyntaxProblem(line, 'a number');
      const t = m[1]!;
      const float = !/^0[xX]/.test(t) && /[.eE]/.test(t);
      push({ kind: 'number', text: t, line, value: Number(t), float });
      i += t.length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\n') throw new SyntaxProblem(line, 'a string closed on its line');
        if (text[j] === '\\' && j + 1 < text.length) {
          const n = text[j + 1]!;
          value += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          j += 2;
        } else value += text[j++];
      }
      if (j >= text.length) throw new SyntaxProblem(line, 'a closed string');
      push({ kind: 'string', text: text.slice(i, j + 1), line, value });
      i = j + 1;
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (!op) throw new SyntaxProblem(line, `TorchScript source, not the character ${JSON.stringify(escapeControl(c))}`);
    if (op === '(' || op === '[' || op === '{') {
      if (++depth > MAX_DEPTH) throw new SyntaxProblem(line, `brackets nested at most ${MAX_DEPTH} deep`);
    } else if (op === ')' || op === ']' || op === '}') depth = Math.max(0, depth - 1);
    push({ kind: 'op', text: op, line });
    i += op.length;
  }
  if (!atLineStart) push({ kind: 'newline', text: '\n', line });
  while (indents.length > 1) {
    indents.pop();
    push({ kind: 'dedent', text: '', line });
  }
  push({ kind: 'end', text: '', line });
  return tokens;
}

export type Expr =
  | { readonly kind: 'name'; readonly id: string; readonly line: number }
  | { readonly kind: 'number'; readonly value: number; readonly float: boolean; readonly line: number }
  | { readonly kind: 'string'; readonly value: string; readonly line: number }
  | { readonly kind: 'constant'; readonly value: null | boolean; readonly line: number }
  | { readonly kind: 'attribute'; readonly target: Expr; readonly attr: string; readonly line: number }
  | { readonly kind: 'subscript'; readonly target: Expr; readonly index: Expr; readonly line: number }
  | { readonly kind: 'call'; readonly fn: Expr; readonly args: readonly Expr[]; readonly keywords: readonly (readonly [string, Expr])[]; readonly line: number }
  | { readonly kind: 'tuple' | 'list'; readonly items: readonly Expr[]; readonly line: number }
  | { readonly kind: 'binary'; readonly op: string; readonly left: Expr; readonly right: Expr; readonly line: number }
  | { readonly kind: 'unary'; readonly op: string; readonly operand: Expr; readonly line: number };

export type Stmt =
  | { readonly kind: 'assign'; readonly targets: readonly string[]; readonly unpack: boolean; readonly value: Expr; readonly line: number }
  | { readonly kind: 'return'; readonly value: Expr | undefined; readonly line: number }
  | { readonly kind: 'expr'; readonly value: Expr; readonly line: number }
  | { readonly kind: 'unsupported'; readonly construct: string; readonly line: number };

export interface Param {
  readonly name: string;
  readonly type?: Expr;
}

export interface Method {
  readonly name: string;
  readonly params: readonly Param[];
  readonly body: readonly Stmt[];
  readonly line: number;
}

export interface ClassDef {
  readonly name: string;
  readonly methods: ReadonlyMap<string, Method>;
  readonly line: number;
}

export interface SourceFile {
  readonly classes: ReadonlyMap<string, ClassDef>;
  /** Module-level functions (scripted helpers); their use is reported as unsupported. */
  readonly functions: ReadonlyMap<string, Method>;
}

/** Statements that open blocks or do things the lowering does not: kept by their keyword. */
const UNSUPPORTED = new Set(['if', 'elif', 'else', 'for', 'while', 'with', 'try', 'except', 'finally', 'raise', 'assert', 'del', 'global', 'nonlocal', 'break', 'continue', 'lambda', 'yield', 'async', 'await']);

export function parseSource(text: string): SourceFile {
  return new Parser(tokenize(text)).file();
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  private get t(): Token {
    return this.tokens[this.pos]!;
  }

  /** The next token's kind (a call, so that TypeScript does not narrow it across accept()). */
  private kind(): TokenKind {
    return this.t.kind;
  }

  private next(): Token {
    const t = this.t;
    if (t.kind !== 'end') this.pos++;
    return t;
  }

  private is(text: string, kind: TokenKind = 'op'): boolean {
    return this.t.kind === kind && this.t.text === text;
  }

  private accept(text: string, kind: TokenKind = 'op'): boolean {
    if (!this.is(text, kind)) return false;
    this.pos++;
    return true;
  }

  private expect(text: string, kind: TokenKind = 'op'): Token {
    if (!this.is(text, kind)) this.fail(`${JSON.stringify(text)}`);
    return this.next();
  }

  private fail(expected: string): never {
    const t = this.t;
    const seen = t.kind === 'newline' ? 'the end of the line' : t.kind === 'end' ? 'the end of the file' : t.kind === 'indent' ? 'an indented block' : t.kind === 'dedent' ? 'the end of a block' : JSON.stringify(escapeControl(t.text.slice(0, 40)));
    throw new SyntaxProblem(t.line, `${expected}, not ${seen}`);
  }

  private name(): string {
    if (this.t.kind !== 'name') this.fail('a name');
    return this.next().text;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw new SyntaxProblem(this.t.line, `expressions nested at most ${MAX_DEPTH} deep`);
  }

  file(): SourceFile {
    const classes = new Map<string, ClassDef>();
    const functions = new Map<string, Method>();
    while (this.t.kind !== 'end') {
      if (this.accept('\n', 'newline')) continue;
      if (this.is('class', 'name')) {
        const c = this.classDef();
        classes.set(c.name, c);
      } else if (this.is('def', 'name')) {
        const m = this.method();
        functions.set(m.name, m);
      } else this.skipStatement();
    }
    return { classes, functions };
  }

  /** A line (and any block it opens) the reader has no use for: imports, class attributes. */
  private skipStatement(): void {
    while (this.t.kind !== 'newline' && this.t.kind !== 'end') this.next();
    this.accept('\n', 'newline');
    if (this.kind() === 'indent') this.skipBlock();
  }

  private skipBlock(): void {
    let level = 0;
    do {
      const t = this.next();
      if (t.kind === 'indent') level++;
      else if (t.kind === 'dedent') level--;
      else if (t.kind === 'end') return;
    } while (level > 0);
  }

  private classDef(): ClassDef {
    const line = this.expect('class', 'name').line;
    const name = this.name();
    if (this.accept('(')) {
      while (!this.is(')') && this.t.kind !== 'end' && this.t.kind !== 'newline') this.next();
      this.expect(')');
    }
    this.expect(':');
    this.expect('\n', 'newline');
    const methods = new Map<string, Method>();
    if (!this.accept('', 'indent')) this.fail('an indented class body');
    while (!this.accept('', 'dedent')) {
      if (this.t.kind === 'end') break;
      if (this.is('def', 'name')) {
        const m = this.method();
        methods.set(m.name, m);
      } else this.skipStatement();
    }
    return { name, methods, line };
  }

  private method(): Method {
    const line = this.expect('def', 'name').line;
    const name = this.name();
    this.expect('(');
    const params: Param[] = [];
    while (!this.is(')')) {
      const p = this.name();
      const type = this.accept(':') ? this.expression() : undefined;
      if (this.accept('=')) this.expression();
      params.push(type ? { name: p, type } : { name: p });
      if (!this.accept(',')) break;
    }
    this.expect(')');
    if (this.accept('->')) this.expression();
    this.expect(':');
    this.expect('\n', 'newline');
    if (!this.accept('', 'indent')) this.fail('an indented method body');
    const body: Stmt[] = [];
    while (!this.accept('', 'dedent')) {
      if (this.t.kind === 'end') break;
      body.push(this.statement());
    }
    return { name, params, body, line };
  }

  private statement(): Stmt {
    const t = this.t;
    const line = t.line;
    if (t.kind === 'name' && UNSUPPORTED.has(t.text)) {
      this.skipStatement();
      return { kind: 'unsupported', construct: `${/^[aeiou]/.test(t.text) ? 'an' : 'a'} ${JSON.stringify(t.text)} statement`, line };
    }
    if (t.kind === 'name' && t.text === 'pass') {
      this.skipStatement();
      return { kind: 'expr', value: { kind: 'constant', value: null, line }, line };
    }
    if (this.accept('return', 'name')) {
      const value = this.t.kind === 'newline' ? undefined : this.tupleOrExpression();
      this.endOfStatement();
      return { kind: 'return', value, line };
    }
    // An assignment: `a = ...` or `a, b, = ...` (TorchScript writes tuple unpacking with a trailing comma).
    const start = this.pos;
    if (t.kind === 'name') {
      const targets: string[] = [];
      let unpack = false;
      for (;;) {
        if (this.t.kind !== 'name') break;
        targets.push(this.next().text);
        if (this.accept(',')) {
          unpack = true;
          continue;
        }
        break;
      }
      if (this.accept('=')) {
        const value = this.tupleOrExpression();
        this.endOfStatement();
        return { kind: 'assign', targets, unpack, value, line };
      }
      if (this.t.kind === 'op' && /^(\+|-|\*|\/|\/\/|%|\*\*|&|\||\^)$/.test(this.t.text) && this.tokens[this.pos + 1]?.text === '=') {
        this.skipStatement();
        return { kind: 'unsupported', construct: 'an augmented assignment', line };
      }
      this.pos = start;
    }
    const value = this.tupleOrExpression();
    if (this.is('=')) {
      this.skipStatement();
      return { kind: 'unsupported', construct: 'an assignment to an attribute or item', line };
    }
    this.endOfStatement();
    return { kind: 'expr', value, line };
  }

  private endOfStatement(): void {
    if (this.accept('\n', 'newline') || this.t.kind === 'end' || this.t.kind === 'dedent') return;
    this.fail('the end of the statement');
  }

  /** `a, b` without brackets is a tuple (return values, assignments). */
  private tupleOrExpression(): Expr {
    const first = this.expression();
    if (!this.is(',')) return first;
    const items = [first];
    while (this.accept(',')) {
      if (this.t.kind === 'newline' || this.is(')') || this.is('=')) break;
      items.push(this.expression());
    }
    return { kind: 'tuple', items, line: first.line };
  }

  expression(): Expr {
    this.enter();
    try {
      return this.or();
    } finally {
      this.depth--;
    }
  }

  private or(): Expr {
    let left = this.and();
    while (this.is('or', 'name')) {
      const line = this.next().line;
      left = { kind: 'binary', op: 'or', left, right: this.and(), line };
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.is('and', 'name')) {
      const line = this.next().line;
      left = { kind: 'binary', op: 'and', left, right: this.not(), line };
    }
    return left;
  }

  private not(): Expr {
    if (this.is('not', 'name')) {
      const line = this.next().line;
      this.enter();
      try {
        return { kind: 'unary', op: 'not', operand: this.not(), line };
      } finally {
        this.depth--;
      }
    }
    return this.comparison();
  }

  private comparison(): Expr {
    let left = this.binary(0);
    for (;;) {
      const t = this.t;
      let op: string | undefined;
      if (t.kind === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.text)) op = t.text;
      else if (t.kind === 'name' && (t.text === 'is' || t.text === 'in')) op = t.text;
      if (!op) return left;
      this.next();
      if (op === 'is' && this.accept('not', 'name')) op = 'is not';
      left = { kind: 'binary', op, left, right: this.binary(0), line: t.line };
    }
  }

  private static readonly LEVELS: readonly (readonly string[])[] = [['|'], ['^'], ['&'], ['+', '-'], ['*', '/', '//', '%', '@']];

  private binary(level: number): Expr {
    if (level >= Parser.LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    while (this.t.kind === 'op' && Parser.LEVELS[level]!.includes(this.t.text)) {
      const t = this.next();
      left = { kind: 'binary', op: t.text, left, right: this.binary(level + 1), line: t.line };
    }
    return left;
  }

  private unary(): Expr {
    const t = this.t;
    if (t.kind === 'op' && (t.text === '-' || t.text === '+' || t.text === '~')) {
      this.next();
      this.enter();
      try {
        return { kind: 'unary', op: t.text, operand: this.unary(), line: t.line };
      } finally {
        this.depth--;
      }
    }
    return this.power();
  }

  private power(): Expr {
    const base = this.postfix();
    if (!this.is('**')) return base;
    const line = this.next().line;
    this.enter();
    try {
      return { kind: 'binary', op: '**', left: base, right: this.unary(), line };
    } finally {
      this.depth--;
    }
  }

  private postfix(): Expr {
    let e = this.atom();
    let chain = 0;
    for (;;) {
      // A chain of calls is a nesting too: a.b(...)(...)... is bounded like brackets.
      if (++chain > 10 * MAX_DEPTH) this.fail(`at most ${10 * MAX_DEPTH} calls, attributes and subscripts in a chain`);
      const line = this.t.line;
      if (this.accept('.')) e = { kind: 'attribute', target: e, attr: this.name(), line };
      else if (this.accept('(')) {
        const args: Expr[] = [];
        const keywords: [string, Expr][] = [];
        while (!this.is(')')) {
          if (this.t.kind === 'name' && this.tokens[this.pos + 1]?.text === '=' && this.tokens[this.pos + 1]?.kind === 'op') {
            const k = this.next().text;
            this.next();
            keywords.push([k, this.expression()]);
          } else {
            if (keywords.length) this.fail('positional arguments before keyword arguments');
            args.push(this.expression());
          }
          if (!this.accept(',')) break;
        }
        this.expect(')');
        e = { kind: 'call', fn: e, args, keywords, line };
      } else if (this.accept('[')) {
        const index = this.tupleOrExpression();
        this.expect(']');
        e = { kind: 'subscript', target: e, index, line };
      } else return e;
    }
  }

  private atom(): Expr {
    const t = this.t;
    const line = t.line;
    switch (t.kind) {
      case 'name':
        this.next();
        if (t.text === 'None') return { kind: 'constant', value: null, line };
        if (t.text === 'True' || t.text === 'False') return { kind: 'constant', value: t.text === 'True', line };
        if (t.text === 'lambda') throw new SyntaxProblem(line, 'no lambda expression (modelbridge lowers traced code only)');
        return { kind: 'name', id: t.text, line };
      case 'number':
        this.next();
        return { kind: 'number', value: t.value as number, float: t.float === true, line };
      case 'string': {
        this.next();
        let value = t.value as string;
        // Adjacent string literals concatenate, as in Python.
        while (this.t.kind === 'string') value += this.next().value as string;
        return { kind: 'string', value, line };
      }
      case 'op':
        if (this.accept('(')) {
          if (this.accept(')')) return { kind: 'tuple', items: [], line };
          const first = this.expression();
          if (this.accept(')')) return first;
          const items = [first];
          while (this.accept(',')) {
            if (this.is(')')) break;
            items.push(this.expression());
          }
          this.expect(')');
          return { kind: 'tuple', items, line };
        }
        if (this.accept('[')) {
          const items: Expr[] = [];
          while (!this.is(']')) {
            items.push(this.expression());
            if (!this.accept(',')) break;
          }
          this.expect(']');
          return { kind: 'list', items, line };
        }
        break;
    }
    return this.fail('an expression');
  }
}
