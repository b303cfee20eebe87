global using Microsoft.ML;
global using Microsoft.ML.Data;
global using Microsoft.ML.Runtime;
