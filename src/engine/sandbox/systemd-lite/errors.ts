/** A command's failure: the message systemctl prints on stderr and its exit code. */
export class Fail extends Error {
  code: number;
  constructor(message: string, code: number) {
    super(message);
    this.code = code;
  }
}
