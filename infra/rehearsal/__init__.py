"""`make rehearse`: every deploy command of docs/DEPLOY.md and .github/workflows/deploy.yml, taken
from those files and run as written (the real AWS CLI, `make`, `chalice deploy`, `terraform`) against
an emulator of AWS on loopback. What the emulator cannot show is listed in docs/DEPLOY.md, "What the
rehearsal cannot show".

- `commands`: the blocks and workflow steps, as the files give them;
- `plan`: the table of which path runs each block and step, how, and why (each must have a row);
- `session`: one bash session per path, a block at a time;
- `emulator`: moto's server, with what CloudFormation does that moto does not (the SAM transform,
  capability checks, a failed change set rolling back);
- `stand_ins`: CloudFormation resource types moto's CloudFormation does not create, created through
  the emulator's own APIs as CloudFormation's providers would;
- `checks`: what each path must have left in the emulator;
- `__main__`: the paths, in order, and the report.
"""
