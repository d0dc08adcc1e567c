import { describe, expect, it } from "vitest";
import { lineReader } from "../../../src/engine/util/streams";

describe("lineReader (a command's answers, line by line, as its output arrives)", () => {
  it("GIVEN lines split across chunks and several in one chunk WHEN fed THEN each whole line comes once, an unfinished one is held", () => {
    const lines: string[] = [];
    const feed = lineReader((l) => {
      lines.push(l);
    });
    feed(Buffer.from("ok aa"));
    expect(lines).toEqual([]);
    feed(Buffer.from("aa\nfail bb why\nsending"));
    expect(lines).toEqual(["ok aaaa", "fail bb why"]);
    feed(Buffer.from(" cc\n"));
    expect(lines).toEqual(["ok aaaa", "fail bb why", "sending cc"]);
  });

  it("GIVEN the reader answers false WHEN more lines come, in the same chunk or later THEN none of them is read", () => {
    const lines: string[] = [];
    const feed = lineReader((l) => {
      lines.push(l);
      return l !== "bad";
    });
    feed(Buffer.from("one\nbad\ntwo\n"));
    feed(Buffer.from("three\n"));
    expect(lines).toEqual(["one", "bad"]);
  });
});
